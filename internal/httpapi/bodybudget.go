package httpapi

import (
	"io"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// inflightRetryAfter is the Retry-After, in seconds, of a request refused because the body
// budget is spent. The budget comes back as soon as the uploads ahead finish, which takes
// seconds, not minutes; a short wait spreads the retries without idling the replica.
const inflightRetryAfter = 2

// meterStep is how much of the budget a body of unknown length takes at a time: large
// enough that a 10 MiB upload locks the budget about 160 times, small enough that what it
// holds beyond what it has read is negligible.
const meterStep = 64 << 10

// bodyBudget bounds the bytes of the request bodies being read at once, over all requests
// (SB_MAX_INFLIGHT_BYTES). What a handler holds of a report is about its body's length, so
// the budget bounds the memory that uploads take together: each one alone is capped, but
// without a cap on their sum a few dozen concurrent uploads exhausted the pod's memory.
type bodyBudget struct {
	limit int64
	gauge prometheus.Gauge // nil in tests that build a budget alone

	mu   sync.Mutex
	used int64
}

func newBodyBudget(limit int64, gauge prometheus.Gauge) *bodyBudget {
	return &bodyBudget{limit: limit, gauge: gauge}
}

// take reserves n bytes, or reports false, reserving nothing, when that would exceed the
// limit.
func (b *bodyBudget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	if b.gauge != nil {
		b.gauge.Set(float64(b.used))
	}
	return true
}

// give returns n bytes taken before.
func (b *bodyBudget) give(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if b.gauge != nil {
		b.gauge.Set(float64(b.used))
	}
}

// inUse is what is reserved now.
func (b *bodyBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// budgetSpent is the answer when the budget cannot take a body; every call makes a new
// Problem because writeProblem fills in the request id.
func budgetSpent() *Problem {
	return unavailable("The server is receiving as many uploads as it can hold; nothing was stored. "+
		"Retry after the time in Retry-After.", inflightRetryAfter)
}

// admitBody reserves the request's body in the in-flight budget before anything reads it:
// a declared length at once, so that a body that does not fit is refused unread; a body of
// unknown length (chunked) as its bytes arrive, so that reading it fails with the same 503
// once it would not fit. Routes whose bodies can be large call it before reading, after
// their cheap refusals (authentication, rate limits), and call release when they end.
func (s *Server) admitBody(c *gin.Context) (release func(), err error) {
	r := c.Request
	switch {
	case r.ContentLength > 0:
		n := r.ContentLength
		if !s.inflight.take(n) {
			return nil, budgetSpent()
		}
		return func() { s.inflight.give(n) }, nil
	case r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody:
		mb := &meteredBody{ReadCloser: r.Body, budget: s.inflight}
		r.Body = mb
		return mb.release, nil
	}
	return func() {}, nil
}

// meteredBody takes the budget for a body of unknown length as it is read, meterStep at a
// time, and never reads more than it holds. Only the handler's goroutine uses it: net/http
// drains a body after the handler through its own reference, not through this one.
type meteredBody struct {
	io.ReadCloser
	budget *bodyBudget

	held, read int64
	err        error
}

func (m *meteredBody) Read(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	if m.held == m.read {
		if !m.budget.take(meterStep) {
			m.err = budgetSpent()
			return 0, m.err
		}
		m.held += meterStep
	}
	if room := m.held - m.read; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := m.ReadCloser.Read(p)
	m.read += int64(n)
	return n, err
}

// release gives back everything taken; later reads fail.
func (m *meteredBody) release() {
	m.budget.give(m.held)
	m.held, m.read = 0, 0
	if m.err == nil {
		m.err = io.ErrClosedPipe
	}
}

// scrubBytesAtOnce bounds the text attachments being scrubbed at once, over all requests.
// Scrubbing holds several times a text's size while it runs (the text as a string, the spans
// found, the rewritten text, its bytes): about 11 MB for a 2 MiB log with an address on
// every line. The body budget does not see that, so without this bound reports that finish
// reading together would all scrub together. Scrubbing is CPU-bound, so on the few cores a
// replica has, more of it at once would not finish sooner anyway.
const scrubBytesAtOnce = 4 << 20

// scrubGate is a weighted semaphore over text bytes being scrubbed.
type scrubGate struct {
	limit int64

	mu   sync.Mutex
	used int64
	wake chan struct{} // closed, and replaced, whenever bytes are given back
}

func newScrubGate(limit int64) *scrubGate {
	return &scrubGate{limit: limit, wake: make(chan struct{})}
}

// acquire waits until n bytes (at most the whole gate: a larger text scrubs alone) may be
// scrubbed, or ctx ends. It returns the weight to give back.
func (g *scrubGate) acquire(done <-chan struct{}, n int64) (int64, error) {
	n = min(n, g.limit)
	for {
		g.mu.Lock()
		if g.used+n <= g.limit {
			g.used += n
			g.mu.Unlock()
			return n, nil
		}
		wake := g.wake
		g.mu.Unlock()
		select {
		case <-wake:
		case <-done:
			return 0, budgetSpent()
		}
	}
}

func (g *scrubGate) release(n int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.used -= n
	close(g.wake)
	g.wake = make(chan struct{})
}
