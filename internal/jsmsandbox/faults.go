package jsmsandbox

import (
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Faults describes the misbehaviour injected into /rest calls. The zero value injects none.
type Faults struct {
	// Latency delays every call before it is handled.
	Latency time.Duration
	// ErrorRate is the fraction of calls (0 to 1) answered with one of ErrorStatuses instead
	// of being handled. The error comes before any change, so it never half-applies.
	ErrorRate float64
	// ErrorStatuses are the statuses injected errors use, picked at random; empty means
	// 429 and 503, the two JSM Cloud answers under load.
	ErrorStatuses []int
	// RetryAfter, when positive, is sent as a Retry-After header (whole seconds, rounded
	// up) with injected 429 and 503 answers, as Atlassian's rate limiter does.
	RetryAfter time.Duration
	// DropAfterCreate makes POST /rest/servicedeskapi/request create the request and then
	// close the connection without answering: the ambiguous outcome the client must resolve
	// by searching before it creates again.
	DropAfterCreate bool
	// DropFirstCreateOnly drops only the first create after SetFaults, the usual shape of
	// the test: one lost answer, then a retry that must not create a second ticket. It
	// implies DropAfterCreate.
	DropFirstCreateOnly bool
	// LostAnswerRate is the fraction of POST calls (0 to 1) that take effect and are then
	// answered with a dropped connection: a lost answer on any write (comments, attachments,
	// customers), not only creates, which the client must resolve before it writes again.
	LostAnswerRate float64
	// TimeoutRate is the fraction of POST calls (0 to 1) that take effect and are then held
	// unanswered until the client gives up (or TimeoutAfter passes, default 30 s), when the
	// connection is dropped: the client's own timeout is what ends the call.
	TimeoutRate  float64
	TimeoutAfter time.Duration
	// Seed seeds the random choices, so a failing test replays the same faults.
	Seed int64
}

// SetFaults replaces the injected faults; it takes effect for the next call.
func (s *Sandbox) SetFaults(f Faults) { s.faults.set(f) }

// faultInjector holds the current Faults and the random source they draw from.
type faultInjector struct {
	mu      sync.Mutex
	f       Faults
	rng     *rand.Rand
	dropped int // creates dropped since the last set
}

func (fi *faultInjector) set(f Faults) {
	f.ErrorStatuses = slices.Clone(f.ErrorStatuses)
	if len(f.ErrorStatuses) == 0 {
		f.ErrorStatuses = []int{http.StatusTooManyRequests, http.StatusServiceUnavailable}
	}
	fi.mu.Lock()
	defer fi.mu.Unlock()
	fi.f = f
	seed := uint64(f.Seed)
	fi.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	fi.dropped = 0
}

func (fi *faultInjector) latency() time.Duration {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	return fi.f.Latency
}

// injectedError decides whether this call fails; status 0 means it does not.
func (fi *faultInjector) injectedError() (status int, retryAfter time.Duration) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	if fi.f.ErrorRate <= 0 || fi.rng.Float64() >= fi.f.ErrorRate {
		return 0, 0
	}
	return fi.f.ErrorStatuses[fi.rng.IntN(len(fi.f.ErrorStatuses))], fi.f.RetryAfter
}

// takeDrop reports whether the create just applied must be answered by a dropped connection.
func (fi *faultInjector) takeDrop() bool {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	if !(fi.f.DropAfterCreate || fi.f.DropFirstCreateOnly) || (fi.f.DropFirstCreateOnly && fi.dropped > 0) {
		return false
	}
	fi.dropped++
	return true
}

// takeLostAnswer decides whether this write's answer is lost after it took effect.
func (fi *faultInjector) takeLostAnswer() bool {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	return fi.f.LostAnswerRate > 0 && fi.rng.Float64() < fi.f.LostAnswerRate
}

// takeTimeout decides whether this write is held unanswered after it took effect, and for
// how long at most.
func (fi *faultInjector) takeTimeout() (time.Duration, bool) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	if fi.f.TimeoutRate <= 0 || fi.rng.Float64() >= fi.f.TimeoutRate {
		return 0, false
	}
	if fi.f.TimeoutAfter > 0 {
		return fi.f.TimeoutAfter, true
	}
	return 30 * time.Second, true
}

// discardWriter takes a handler's answer that is never sent.
type discardWriter struct{ header http.Header }

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

func writeInjectedError(w http.ResponseWriter, api apiFamily, status int, retryAfter time.Duration) {
	if retryAfter > 0 && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
	}
	msg := http.StatusText(status)
	if status == http.StatusTooManyRequests {
		msg = "Rate limit exceeded."
	}
	api.writeError(w, status, "sd.api.injected.fault", msg)
}
