package jsm

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// retryable says whether a blind repetition of a call is harmless. One retryablehttp client
// serves every call, so the decision travels with the request's context.
type retryable bool

const (
	// repeatable calls are reads, or writes whose repetition is harmless: adding a customer
	// who is already on the desk answers 204, creating an existing customer answers 409 (then
	// we search), and a duplicate temporary file expires unused.
	repeatable retryable = true
	// writeOnce calls must not be repeated when their outcome is unknown: a second create
	// request duplicates the ticket, a second comment or attach duplicates those.
	writeOnce retryable = false
)

type retryKey struct{}

func withRetry(ctx context.Context, r retryable) context.Context {
	return context.WithValue(ctx, retryKey{}, r)
}

// retryOf defaults to writeOnce, so a call that forgot to say is never repeated blindly.
func retryOf(ctx context.Context) retryable {
	r, _ := ctx.Value(retryKey{}).(retryable)
	return r
}

// retryPolicy decides, attempt by attempt, whether retryablehttp may send the request again.
type retryPolicy struct {
	maxWait time.Duration
	now     func() time.Time
}

// check implements retryablehttp.CheckRetry. It never returns an error, so that with
// PassthroughErrorHandler the caller sees the last response or transport error itself.
func (p retryPolicy) check(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, nil
	}
	again := retryOf(ctx) == repeatable
	if err != nil {
		if isCertError(err) {
			return false, nil
		}
		return again || notSent(err), nil
	}
	switch s := resp.StatusCode; {
	case s == http.StatusTooManyRequests, s == http.StatusServiceUnavailable:
		ra, ok := retryAfter(resp.Header, p.now())
		if ok && ra > p.maxWait {
			// Waiting longer than we are willing to block a worker: hand the wait back to
			// the caller through Error.RetryAfter and let the durable queue hold the report.
			return false, nil
		}
		// A write is repeated only when the server said "later" (see statusError).
		return again || s == http.StatusTooManyRequests || ok, nil
	case s == http.StatusRequestTimeout:
		return true, nil
	case s >= 500 && s != http.StatusNotImplemented:
		return again, nil
	}
	return false, nil
}

// backoff implements retryablehttp.Backoff: the server's Retry-After when it gave one (429,
// 503), else exponential backoff with jitter so that workers that failed together do not
// return together.
func (p retryPolicy) backoff(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if ra, ok := retryAfter(resp.Header, p.now()); ok {
			return min(ra, hi)
		}
	}
	d := lo
	for range attempt {
		d *= 2
		if d >= hi || d <= 0 {
			d = hi
			break
		}
	}
	d = min(d, hi)
	if d <= 0 {
		return 0
	}
	// "Equal jitter": at least half the step, so the backoff still grows.
	return d/2 + rand.N(d/2+1)
}

// retryAfter reads Retry-After as delta-seconds or an HTTP date (RFC 9110 §10.2.3). A date
// in the past means "now".
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		if s > int64(24*time.Hour/time.Second) { // absurd values must not overflow
			s = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(s) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
