package jsmsandbox

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"
)

// keepCallsRunning bounds the call log of a long-running sandbox, which would otherwise keep
// every uploaded body for ever.
const keepCallsRunning = 1000

// Run serves a sandbox on addr until ctx is done, for `supportbridge jsm-sandbox` and dev
// mode. Without spec paths, or when a spec file is missing, it serves unvalidated and says
// so: a developer without the shared files can still run the product.
func Run(ctx context.Context, addr string, opts Options, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts.Logger = logger
	if opts.KeepCalls == 0 {
		opts.KeepCalls = keepCallsRunning
	}
	if opts.Specs == nil {
		for _, p := range []string{opts.JSMSpecPath, opts.PlatformSpecPath} {
			if _, err := os.Stat(p); p == "" || err != nil {
				opts.JSMSpecPath, opts.PlatformSpecPath = "", ""
			}
		}
		if opts.JSMSpecPath == "" {
			logger.Warn("jsm_sandbox_unvalidated")
		}
	}
	s, err := New(opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("jsm sandbox listen: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("jsm_sandbox_listening", "addr", ln.Addr().String(), "service_desk_id", s.opts.ServiceDeskID,
		"project_key", s.opts.ProjectKey)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("jsm sandbox serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
		return fmt.Errorf("jsm sandbox shutdown: %w", err)
	}
	return nil
}
