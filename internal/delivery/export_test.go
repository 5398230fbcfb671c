package delivery

// SetAfterStep installs a hook that runs after each recorded step and after each
// write-once call, so tests can stop a worker at the points where a crash matters.
func SetAfterStep(w *Worker, f func(step string)) { w.afterStep = f }
