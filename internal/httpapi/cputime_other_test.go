//go:build !(linux || darwin || freebsd)

package httpapi

import "time"

// cpuTime is not measured here; benchmarks then report wall-clock figures only.
func cpuTime() (time.Duration, bool) { return 0, false }
