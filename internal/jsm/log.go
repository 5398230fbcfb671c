package jsm

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// slogLeveled adapts *slog.Logger to retryablehttp.LeveledLogger, which would otherwise
// print to stderr. retryablehttp logs URLs and *url.Error texts with their query strings,
// and ours carry email addresses (customer and user search), so every value is scrubbed.
// Credentials never reach it: basic auth is added below retryablehttp (see basicAuth).
type slogLeveled struct{ l *slog.Logger }

var _ retryablehttp.LeveledLogger = slogLeveled{}

// Error is used by retryablehttp for a failed attempt that may still be retried, and the
// final failure is returned to the caller, who handles it once; so it is only a warning.
func (s slogLeveled) Error(msg string, kv ...any) { s.log(slog.LevelWarn, msg, kv) }

// Warn logs at warning level.
func (s slogLeveled) Warn(msg string, kv ...any) { s.log(slog.LevelWarn, msg, kv) }

// Info logs at info level.
func (s slogLeveled) Info(msg string, kv ...any) { s.log(slog.LevelInfo, msg, kv) }

// Debug logs at debug level ("performing request", "retrying request").
func (s slogLeveled) Debug(msg string, kv ...any) { s.log(slog.LevelDebug, msg, kv) }

func (s slogLeveled) log(level slog.Level, msg string, kv []any) {
	ctx := context.Background() // retryablehttp gives us none
	if !s.l.Enabled(ctx, level) {
		return
	}
	attrs := make([]any, 0, len(kv)+2)
	attrs = append(attrs, slog.String("component", "retryablehttp"))
	for i := 0; i+1 < len(kv); i += 2 {
		key, _ := kv[i].(string)
		attrs = append(attrs, slog.Any(key, scrubValue(kv[i+1])))
	}
	s.l.Log(ctx, level, msg, attrs...)
}

// queryRE matches a URL query up to the next space or quote, as found inside error texts
// such as `Get "https://x/y?query=a@b.example": EOF`.
var queryRE = regexp.MustCompile(`\?[^\s"']*`)

// scrubQuery removes URL query strings from s.
func scrubQuery(s string) string { return queryRE.ReplaceAllString(s, "?[redacted]") }

// scrubValue turns anything that may print a URL into a scrubbed string; numbers and
// durations pass unchanged.
func scrubValue(v any) any {
	switch v := v.(type) {
	case nil, bool, int, int64, time.Duration:
		return v
	case string:
		return scrubQuery(v)
	case error:
		return scrubQuery(v.Error())
	default:
		return scrubQuery(fmt.Sprint(v))
	}
}
