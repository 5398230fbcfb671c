package sitesandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Serve serves the site on ln until ctx is done, for dev mode, then shuts down. Calls left
// hanging by SetDown(Hang) are released first, or shutdown would wait for them.
func (s *Site) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	if s.spec == nil {
		s.log.Warn("site_sandbox_unvalidated")
	}
	s.log.Info("site_sandbox_listening", "addr", ln.Addr().String(), "path_prefix", s.opts.PathPrefix)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("site sandbox serve: %w", err)
	case <-ctx.Done():
	}
	s.SetDown(0)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		srv.Close()
		return fmt.Errorf("site sandbox shutdown: %w", err)
	}
	return nil
}
