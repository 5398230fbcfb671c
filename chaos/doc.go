// Package chaos proves the service under faults: the real binary, started with `serve` and
// real configuration, against real redis-server processes the tests start, kill, pause and
// restart, and the JSM sandbox in-process so every call it received can be counted. The
// tests carry the build tag chaos and run with `make chaos`; every scenario is bounded by
// deadlines. README.md ("Proof under faults") lists the scenarios and their figures.
package chaos
