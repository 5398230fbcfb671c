package tenant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/supportbridge/supportbridge/internal/secret"
)

// More errors of the lifecycle use cases; Service wraps them with their cause.
var (
	// ErrIdentityMismatch means the verified token names another tenant than the payload:
	// one site must not install over, or link into, another.
	ErrIdentityMismatch = errors.New("token does not name this tenant")
	// ErrConflict means the installation is already recorded for another site.
	ErrConflict = errors.New("installation belongs to another site")
	// ErrIncomplete means the change was saved but a step that must follow it (ending
	// consent, marking data for deletion) failed. Every step is idempotent, so the caller
	// repeats the whole call; Atlassian does when the callback is answered with a 5xx.
	ErrIncomplete = errors.New("lifecycle step incomplete")
)

// FieldError names one invalid field of a lifecycle payload by its dotted JSON path.
type FieldError struct {
	Path    string
	Message string
}

// ValidationError lists every problem of a refused payload at once. Messages are fixed
// phrases that echo nothing from the payload.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Path + ": " + f.Message
	}
	return "invalid lifecycle payload: " + strings.Join(parts, "; ")
}

// ConsentEnder ends what a tenant granted (log-access grants, pending requests) when it
// uninstalls. Ending must be idempotent: a failed uninstall is repeated whole.
type ConsentEnder interface {
	TenantUninstalled(ctx context.Context, tenantKey string) error
}

// Retention schedules the deletion of an uninstalled tenant's data, and cancels it when the
// tenant comes back within the retention period. Both must be idempotent.
type Retention interface {
	MarkForDeletion(ctx context.Context, tenantKey string, at time.Time) error
	Unmark(ctx context.Context, tenantKey string) error
}

// ServiceOptions are the dependencies of a Service. Store is required.
type ServiceOptions struct {
	// Store must read its latest write: lifecycle decisions are never made on a cached copy
	// (Directory.Fresh gives such a view of the directory).
	Store Store
	// Consent is nil where log-access consent is not wired; uninstall then ends nothing.
	Consent ConsentEnder
	// Retention is nil until data retention is wired; uninstall then marks nothing.
	Retention Retention
	// RetentionPeriod is how long an uninstalled tenant's data is kept.
	RetentionPeriod time.Duration
	// AppKey is the Connect app key (SB_CONNECT_APP_KEY); installs of another app are refused,
	// and Forge-only tenants carry it.
	AppKey string
	// AllowedHosts are host suffixes a tenant's baseUrl may have (SB_CONNECT_ALLOWED_HOSTS):
	// the service later sends signed requests there.
	AllowedHosts []string
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service runs the lifecycle of installations: Connect install, uninstall, enable and
// disable, and the link between a Connect tenant and the Forge installation on its site.
// Its callers authenticate the request; Service takes the verified identity and the payload
// and decides. A refused call writes nothing.
type Service struct {
	o ServiceOptions
}

// NewService returns a Service.
func NewService(o ServiceOptions) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{o: o}
}

// Install is a Connect "installed" callback: its signed identity and its payload.
type Install struct {
	// Issuer is the clientKey the verified install token was issued by.
	Issuer string
	// The rest is the payload as Atlassian posts it.
	ClientKey                string
	Key                      string
	BaseURL                  string
	DisplayURL               string
	ProductType              string
	Description              string
	ServiceEntitlementNumber string
	EntitlementID            string
	EntitlementNumber        string
	OAuthClientID            string
	InstallationID           string
	CloudID                  string
	SharedSecret             secret.Secret
}

// minSecretLen is the shortest shared secret accepted; Atlassian's are far longer.
const minSecretLen = 16

// Install records a Connect installation, or a reinstall. Every signed install sets the
// shared secret it carries: Atlassian rotates it by reinstalling, and tokens signed with the
// old one stop working. A reinstall keeps what Forge linked and cancels a pending deletion.
func (s *Service) Install(ctx context.Context, in Install) error {
	if in.Issuer == "" || in.Issuer != in.ClientKey {
		return fmt.Errorf("install %q: %w", in.ClientKey, ErrIdentityMismatch)
	}
	if err := s.validateInstall(in); err != nil {
		return err
	}
	now := s.o.Now().UTC()
	t, err := s.o.Store.Get(ctx, in.ClientKey)
	switch {
	case errors.Is(err, ErrNotFound):
		t = Tenant{ClientKey: in.ClientKey, InstalledAt: now}
	case err != nil:
		return err
	}
	t.Key, t.BaseURL, t.DisplayURL, t.ProductType, t.Description = in.Key, in.BaseURL, in.DisplayURL, in.ProductType, in.Description
	t.ServiceEntitlementNumber, t.EntitlementID, t.EntitlementNumber = in.ServiceEntitlementNumber, in.EntitlementID, in.EntitlementNumber
	t.OAuthClientID, t.InstallationID = in.OAuthClientID, in.InstallationID
	if in.CloudID != "" { // an older payload without it must not unlink the site
		t.CloudID = in.CloudID
	}
	t.SharedSecret = in.SharedSecret
	t.Installed, t.Enabled, t.UpdatedAt, t.UninstalledAt = true, true, now, time.Time{}
	if t.InstalledAt.IsZero() {
		t.InstalledAt = now
	}
	if err := s.o.Store.Save(ctx, t); err != nil {
		return err
	}
	// Unmarked on every install, not only after an uninstall: if this failed last time, the
	// repeat finds the tenant installed and must still cancel the deletion.
	if err := s.unmark(ctx, t.ClientKey); err != nil {
		return err
	}
	s.o.Logger.InfoContext(ctx, "tenant_installed", "client_key", t.ClientKey, "product", t.ProductType)
	return nil
}

// validateInstall checks what an install may set; the baseUrl matters most, because the
// service later sends signed requests there.
func (s *Service) validateInstall(in Install) error {
	var fields []FieldError
	if in.Key != s.o.AppKey {
		fields = append(fields, FieldError{"key", "must be this app's key"})
	}
	if msg := checkSiteURL(in.BaseURL, s.o.AllowedHosts); msg != "" {
		fields = append(fields, FieldError{"baseUrl", msg})
	}
	if in.DisplayURL != "" {
		if msg := checkSiteURL(in.DisplayURL, s.o.AllowedHosts); msg != "" {
			fields = append(fields, FieldError{"displayUrl", msg})
		}
	}
	if len(in.SharedSecret.Reveal()) < minSecretLen {
		fields = append(fields, FieldError{"sharedSecret", "is required (at least 16 characters)"})
	}
	for _, f := range []struct{ path, v string }{
		{"productType", in.ProductType}, {"description", in.Description}, {"installationId", in.InstallationID},
		{"cloudId", in.CloudID}, {"oauthClientId", in.OAuthClientID},
	} {
		if len(f.v) > 1024 {
			fields = append(fields, FieldError{f.path, "is too long"})
		}
	}
	if len(fields) > 0 {
		return &ValidationError{Fields: fields}
	}
	return nil
}

// checkSiteURL accepts https URLs on an allowed host suffix and returns why not otherwise.
func checkSiteURL(raw string, suffixes []string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "must be an absolute URL"
	}
	if u.Scheme != "https" {
		return "must use https"
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "must not carry credentials, a query or a fragment"
	}
	host := strings.ToLower(u.Hostname())
	for _, suf := range suffixes {
		if strings.HasSuffix(host, strings.ToLower(suf)) && len(host) > len(suf) {
			return ""
		}
	}
	return "host is not an Atlassian site (" + strings.Join(suffixes, ", ") + ")"
}

// Uninstall ends a Connect installation: the tenant's tokens stop working, what it granted
// ends, and its data is marked for deletion after the retention period. Its record and
// shared secret stay until then, so a reinstall within the period finds them. An unknown
// tenant is not an error: there is nothing to forget, and Atlassian must not retry.
func (s *Service) Uninstall(ctx context.Context, issuer, clientKey string) error {
	if issuer == "" || issuer != clientKey {
		return fmt.Errorf("uninstall %q: %w", clientKey, ErrIdentityMismatch)
	}
	t, err := s.o.Store.Get(ctx, clientKey)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.end(ctx, t)
}

// end uninstalls t and runs what must follow. A repeat (Atlassian retrying a callback that
// failed half-way) keeps the first uninstall time, so retries do not postpone deletion.
func (s *Service) end(ctx context.Context, t Tenant) error {
	now := s.o.Now().UTC()
	if t.Installed || t.UninstalledAt.IsZero() {
		t.UninstalledAt = now
	}
	t.Installed, t.Enabled, t.UpdatedAt = false, false, now
	if err := s.o.Store.Save(ctx, t); err != nil {
		return err
	}
	if s.o.Consent != nil {
		if err := s.o.Consent.TenantUninstalled(ctx, t.ClientKey); err != nil {
			s.o.Logger.ErrorContext(ctx, "end_consent_on_uninstall_failed", "client_key", t.ClientKey, "error", err)
			return fmt.Errorf("end consent: %w: %w", ErrIncomplete, err)
		}
	}
	if s.o.Retention != nil {
		if err := s.o.Retention.MarkForDeletion(ctx, t.ClientKey, t.UninstalledAt.Add(s.o.RetentionPeriod)); err != nil {
			s.o.Logger.ErrorContext(ctx, "mark_for_deletion_failed", "client_key", t.ClientKey, "error", err)
			return fmt.Errorf("mark for deletion: %w: %w", ErrIncomplete, err)
		}
	}
	s.o.Logger.InfoContext(ctx, "tenant_uninstalled", "client_key", t.ClientKey)
	return nil
}

func (s *Service) unmark(ctx context.Context, clientKey string) error {
	if s.o.Retention == nil {
		return nil
	}
	if err := s.o.Retention.Unmark(ctx, clientKey); err != nil {
		s.o.Logger.ErrorContext(ctx, "unmark_for_deletion_failed", "client_key", clientKey, "error", err)
		return fmt.Errorf("unmark for deletion: %w: %w", ErrIncomplete, err)
	}
	return nil
}

// SetEnabled records that a site administrator enabled or disabled the app. clientKey is
// the verified token's tenant. The shared secret is never changed here.
func (s *Service) SetEnabled(ctx context.Context, clientKey string, on bool) error {
	t, err := s.o.Store.Get(ctx, clientKey)
	if err != nil {
		return err
	}
	if !t.Active() {
		return ErrUninstalled
	}
	t.Enabled, t.UpdatedAt = on, s.o.Now().UTC()
	return s.o.Store.Save(ctx, t)
}

// ForgeInstallation is a Forge installation as its verified invocation token names it.
type ForgeInstallation struct {
	InstallationID string // installation ARI
	CloudID        string // the site
	AppID          string // app ARI
	EnvironmentID  string // may be empty
	SiteURL        string // may be empty
}

// ForgeEvent is what an unsigned Forge lifecycle body claims. Bodies spell ids as bare
// UUIDs where tokens have ARIs; AppID may be empty.
type ForgeEvent struct {
	InstallationID string
	CloudID        string
	AppID          string
}

// agree refuses a body that disagrees with the token it came with: identity comes from the
// token, and a body naming another installation or site is a mistake or a forgery.
func (ev ForgeEvent) agree(inst ForgeInstallation) error {
	var fields []FieldError
	if idKey(ev.InstallationID) != idKey(inst.InstallationID) {
		fields = append(fields, FieldError{"id", "does not match the invocation token"})
	}
	if ev.CloudID != inst.CloudID {
		fields = append(fields, FieldError{"context", "does not match the invocation token"})
	}
	if ev.AppID != "" && idKey(ev.AppID) != idKey(inst.AppID) {
		fields = append(fields, FieldError{"app.id", "does not match the invocation token"})
	}
	if len(fields) > 0 {
		return &ValidationError{Fields: fields}
	}
	return nil
}

// idKey reduces an id to the part Forge keeps across its two spellings (ARI and UUID).
func idKey(id string) string {
	if strings.HasPrefix(id, "ari:") {
		if i := strings.LastIndexByte(id, '/'); i >= 0 {
			return id[i+1:]
		}
	}
	return id
}

// LinkForge records a Forge installation (installed or upgraded). It joins the Connect
// tenant that carried the same installation id, or else the tenant of the same site;
// otherwise the site becomes a Forge-only tenant keyed by its cloud id. Repeating it changes
// nothing. A tenant recorded for another site is never joined.
func (s *Service) LinkForge(ctx context.Context, inst ForgeInstallation, ev ForgeEvent) error {
	if err := ev.agree(inst); err != nil {
		return err
	}
	t, err := s.o.Store.FindByInstallationID(ctx, inst.InstallationID)
	if err == nil && t.CloudID != "" && t.CloudID != inst.CloudID {
		return fmt.Errorf("link forge installation to %q: %w", t.ClientKey, ErrConflict)
	}
	if errors.Is(err, ErrNotFound) {
		// An uninstalled tenant of the site is joined too: a reinstall after the Connect app
		// was removed.
		t, err = s.o.Store.FindByCloudID(ctx, inst.CloudID)
	}
	now := s.o.Now().UTC()
	switch {
	case errors.Is(err, ErrNotFound):
		t, err = s.o.Store.Get(ctx, inst.CloudID)
		if errors.Is(err, ErrNotFound) {
			t, err = Tenant{ClientKey: inst.CloudID, InstalledAt: now}, nil
		}
		if err != nil {
			return err
		}
	case err != nil:
		return err
	}
	unchanged := t.ForgeInstallationID == inst.InstallationID && t.CloudID == inst.CloudID && t.Installed &&
		t.ForgeAppID == inst.AppID && (inst.EnvironmentID == "" || t.ForgeEnvironmentID == inst.EnvironmentID)
	if !unchanged {
		t.ForgeInstallationID, t.ForgeAppID, t.CloudID = inst.InstallationID, inst.AppID, inst.CloudID
		if inst.EnvironmentID != "" {
			t.ForgeEnvironmentID = inst.EnvironmentID
		}
		if t.BaseURL == "" && inst.SiteURL != "" {
			t.BaseURL = inst.SiteURL
		}
		if t.Key == "" {
			t.Key = s.o.AppKey
		}
		t.Installed, t.Enabled, t.UpdatedAt, t.UninstalledAt = true, true, now, time.Time{}
		if err := s.o.Store.Save(ctx, t); err != nil {
			return err
		}
	}
	// Also on a repeat, which may follow a link whose unmark failed.
	if err := s.unmark(ctx, t.ClientKey); err != nil {
		return err
	}
	if !unchanged {
		s.o.Logger.InfoContext(ctx, "forge_installation_linked", "client_key", t.ClientKey, "forge_only", t.ClientKey == inst.CloudID)
	}
	return nil
}

// UnlinkForge records that a Forge installation was removed. A Forge-only tenant is
// uninstalled like a Connect one; a Connect tenant only loses its Forge link and stays.
// An unknown installation is not an error.
func (s *Service) UnlinkForge(ctx context.Context, inst ForgeInstallation, ev ForgeEvent) error {
	if err := ev.agree(inst); err != nil {
		return err
	}
	t, err := s.o.Store.FindByInstallationID(ctx, inst.InstallationID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if t.CloudID != "" && t.CloudID != inst.CloudID {
		return fmt.Errorf("unlink forge installation from %q: %w", t.ClientKey, ErrConflict)
	}
	if t.ClientKey == t.CloudID && t.SharedSecret.IsZero() { // Forge-only
		return s.end(ctx, t)
	}
	t.ForgeInstallationID, t.ForgeAppID = "", ""
	t.UpdatedAt = s.o.Now().UTC()
	return s.o.Store.Save(ctx, t)
}
