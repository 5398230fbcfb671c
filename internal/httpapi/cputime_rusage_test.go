//go:build linux || darwin || freebsd

package httpapi

import (
	"syscall"
	"time"
)

// cpuTime is the user+system CPU time of this process. Benchmarks report throughput per CPU
// second next to the wall-clock figure, because on a shared machine the wall clock measures
// the neighbours as much as the code.
func cpuTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
