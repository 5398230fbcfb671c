package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

const requestIDKey = "sb.request_id"

// validRequestID accepts caller-supplied ids that are safe to echo and to log.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

func requestID(c *gin.Context) string { return c.GetString(requestIDKey) }

// withRequestID accepts a well-formed X-Request-Id or makes one, and returns it.
func withRequestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader("X-Request-Id")
		if !validRequestID.MatchString(id) {
			var b [12]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Set(requestIDKey, id)
		c.Header("X-Request-Id", id)
		c.Next()
	}
}

// accessLog writes one line per request. It logs the route template and the path without its
// query, because queries carry jwt and consent tokens; it never logs headers.
func (s *Server) accessLog() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := s.now()
		c.Next()
		route := c.FullPath()
		path := ""
		if route == "" {
			// Unmatched paths are logged by their first segment only: the rest may hold a
			// capability token (a mistyped consent link) or other secrets.
			path = firstSegment(c.Request.URL.Path)
		}
		s.log.LogAttrs(c.Request.Context(), levelFor(c.Writer.Status()), "http_request",
			slog.String("request_id", requestID(c)),
			slog.String("method", methodLabel(c.Request.Method)),
			slog.String("route", route),
			slog.String("path", path),
			slog.Int("status", c.Writer.Status()),
			slog.Int("bytes", c.Writer.Size()),
			slog.Duration("duration", s.now().Sub(start)),
			slog.String("remote", c.ClientIP()),
		)
	}
}

// recoverPanics turns a panic into a 500 problem; the panic value is logged, never sent.
func (s *Server) recoverPanics() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.fail(c, fmt.Errorf("panic: %v", v))
			}
		}()
		c.Next()
	}
}

// limitBody caps request bodies; a declared length over the cap is refused before reading.
// Routes that take files have their own larger cap in perRoute.
func limitBody(def int64, perRoute map[string]int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		max := def
		if m, ok := perRoute[c.FullPath()]; ok {
			max = m
		}
		if c.Request.ContentLength > max {
			writeProblem(c, problem(http.StatusRequestEntityTooLarge, "too-large", "Request body too large",
				fmt.Sprintf("The request body is larger than %d bytes.", max)))
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, max)
		c.Next()
	}
}

// securityHeaders sets the headers every response carries. Pages that Atlassian frames
// (module URLs) replace frame-ancestors themselves.
func securityHeaders() gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		h.Set("Cache-Control", "no-store")
		c.Next()
	}
}

// requireContentType refuses bodies of other media types with 415.
func requireContentType(types ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
		if err == nil {
			for _, t := range types {
				if mt == t {
					c.Next()
					return
				}
			}
		}
		writeProblem(c, problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			fmt.Sprintf("Send the body as %s.", joinOr(types))))
	}
}

func joinOr(types []string) string {
	switch len(types) {
	case 0:
		return ""
	case 1:
		return types[0]
	}
	out := ""
	for i, t := range types {
		switch {
		case i == 0:
			out = t
		case i == len(types)-1:
			out += " or " + t
		default:
			out += ", " + t
		}
	}
	return out
}

// metrics holds the Prometheus collectors of the HTTP layer.
type metrics struct {
	duration *prometheus.HistogramVec
	inflight prometheus.Gauge
	// bodyBytes is the part of SB_MAX_INFLIGHT_BYTES in use.
	bodyBytes prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "supportbridge_http_request_duration_seconds",
			Help:    "Latency of HTTP requests by route template, method and status.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method", "status"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "supportbridge_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
		bodyBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "supportbridge_http_body_bytes_in_flight",
			Help: "Bytes of request bodies admitted for reading and not yet released (at most SB_MAX_INFLIGHT_BYTES).",
		}),
	}
	reg.MustRegister(m.duration, m.inflight, m.bodyBytes)
	return m
}

// measure records per-route latency. No label value comes from the client: the route is a
// template of routes.go or "unmatched", the method one of the standard ones or "OTHER", so a
// scanner inventing paths or methods cannot grow the series count (300 requests with 60 KB
// made-up methods once made /metrics 307 MB).
func (s *Server) measure() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		s.metrics.inflight.Inc()
		c.Next()
		s.metrics.inflight.Dec()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		s.metrics.duration.WithLabelValues(route, methodLabel(c.Request.Method), strconv.Itoa(c.Writer.Status())).
			Observe(time.Since(start).Seconds())
	}
}

// methodLabel maps the request method onto a fixed set, for metric labels and log lines:
// net/http accepts any token as a method, of any length.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

func levelFor(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}

// firstSegment keeps "/consent" of "/consent/<token>/x", bounded in length.
func firstSegment(p string) string {
	if i := strings.IndexByte(strings.TrimPrefix(p, "/"), '/'); i >= 0 {
		p = p[:i+1] + "/…"
	}
	if len(p) > 64 {
		p = p[:64]
	}
	return p
}
