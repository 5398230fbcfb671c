package consent_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/supportbridge/supportbridge/internal/consent"
	"github.com/supportbridge/supportbridge/internal/logaccess"
	"github.com/supportbridge/supportbridge/internal/logstore"
	"github.com/supportbridge/supportbridge/internal/secret"
)

// The model test drives the real Service (on a real Redis) and a few lines of plain Go that
// state the consent rules directly, with the same random operations, and checks after every
// step that they agree: on each operation's outcome, on every Authorize answer, on the number
// of comments posted (each decision and each end exactly once), and periodically on the
// status of every request and grant.

type mReq struct {
	id, token, ticket string
	agent             consent.Actor
	status            string // as stored; see status()
	expiresAt         time.Time
	dur               consent.Duration
	grant, reconfirms string
}

type mGrant struct {
	id, ticket       string
	agent            consent.Actor
	streams          []string
	from, to         time.Time
	end, reconfirmBy time.Time
	untilRevoked     bool
	status           string // as stored
	reconfirmReq     string
}

type mTicket struct {
	key, tenant string
	done        bool // resolved, whether or not the webhook came
	silent      bool // resolved without a webhook: ends at the next Tick
	unknown     bool // the tenant uninstalled
}

type model struct {
	now      func() time.Time
	reqs     []*mReq
	grants   []*mGrant
	reqByID  map[string]*mReq
	grantsBy map[string]*mGrant
	tickets  []*mTicket
	comments int
	// windows and scopes remember what each request asked for; grants copy them.
	windows map[string][2]time.Time
	scopes  map[string][]string
}

func (m *model) ticket(key string) *mTicket {
	for _, t := range m.tickets {
		if t.key == key {
			return t
		}
	}
	return nil
}

// reqStatus is a request's status as of now.
func (m *model) reqStatus(r *mReq) string {
	if r.status == consent.RequestPending && !m.now().Before(r.expiresAt) {
		return consent.RequestExpired
	}
	return r.status
}

// active says whether a grant may be used now.
func (m *model) active(g *mGrant) bool {
	if g.status != consent.GrantActive {
		return false
	}
	if g.untilRevoked {
		return m.now().Before(g.reconfirmBy)
	}
	return m.now().Before(g.end)
}

func (m *model) grantStatus(g *mGrant) string {
	if g.status == consent.GrantActive && !m.active(g) {
		if g.untilRevoked {
			return consent.GrantEnded
		}
		return consent.GrantExpired
	}
	return g.status
}

func (m *model) decideErr(r *mReq) error {
	switch m.reqStatus(r) {
	case consent.RequestPending:
		return nil
	case consent.RequestExpired, consent.RequestCancelled:
		return consent.ErrGone
	}
	return consent.ErrAlreadyDecided
}

// end ends an active grant and withdraws its open re-confirmation, quietly: the grant's own
// comment covers both.
func (m *model) end(g *mGrant, status string) {
	g.status = status
	m.comments++
	if rr := m.reqByID[g.reconfirmReq]; rr != nil && rr.status == consent.RequestPending {
		rr.status = consent.RequestCancelled
		if !m.now().Before(rr.expiresAt) {
			rr.status = consent.RequestExpired
		}
	}
	g.reconfirmReq = ""
}

// endTicket is the ticket-closed / uninstall rule: pending requests are withdrawn (or recorded
// as lapsed), then active grants end; grants already over by the clock are left for Tick.
func (m *model) endTicket(key string) {
	for _, r := range m.reqs {
		if r.ticket != key || r.status != consent.RequestPending {
			continue
		}
		r.status = consent.RequestCancelled
		if !m.now().Before(r.expiresAt) {
			r.status = consent.RequestExpired
		}
		if r.reconfirms == "" {
			m.comments++
		}
	}
	for _, g := range m.grants {
		if g.ticket == key && g.status == consent.GrantActive && m.active(g) {
			m.end(g, consent.GrantEnded)
		}
	}
}

// tick is the scheduler rule. It returns the grants that must be asked to re-confirm.
func (m *model) tick() []string {
	now := m.now()
	for _, r := range m.reqs {
		if r.status == consent.RequestPending && !now.Before(r.expiresAt) {
			r.status = consent.RequestExpired
			if r.reconfirms == "" {
				m.comments++
			}
		}
	}
	var ask []string
	for _, g := range m.grants {
		switch {
		case g.status != consent.GrantActive:
		case !m.active(g):
			m.end(g, m.grantStatus(g))
		case g.untilRevoked && g.reconfirmReq == "" && !now.Before(g.reconfirmBy.Add(-consent.ReconfirmNotice)):
			ask = append(ask, g.id)
			m.comments++
		}
	}
	return ask
}

func (m *model) reconcile() {
	for _, t := range m.tickets {
		if t.silent {
			m.endTicket(t.key)
		}
	}
}

func TestModel(t *testing.T) {
	steps, seeds := 3000, []uint64{1, 2, 3}
	if testing.Short() {
		steps, seeds = 500, []uint64{1}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runModel(t, seed, steps) })
	}
}

func runModel(t *testing.T, seed uint64, steps int) {
	e := newEnv(t, func(o *consent.Options) {
		o.Rand = seededReader(seed)
		o.ReconcileEvery = time.Nanosecond // every Tick, so the model knows when it happens
	})
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	m := &model{now: e.clock.Now, reqByID: map[string]*mReq{}, grantsBy: map[string]*mGrant{},
		windows: map[string][2]time.Time{}, scopes: map[string][]string{}}
	streams := map[string][]string{"tenant-a": {"api", "worker"}, "tenant-b": {"api", "web"}}
	nextTicket := 1
	addTicket := func(tenant string) {
		key := fmt.Sprintf("MOD-%d", nextTicket)
		nextTicket++
		e.tickets.mu.Lock()
		e.tickets.tenants[key] = tenant
		e.tickets.mu.Unlock()
		m.tickets = append(m.tickets, &mTicket{key: key, tenant: tenant})
	}
	for range 2 {
		addTicket("tenant-a")
		addTicket("tenant-b")
	}
	staff := []consent.Actor{alice, bob, root}
	var trace []string
	fail := func(format string, args ...any) {
		t.Helper()
		start := max(0, len(trace)-15)
		t.Fatalf("seed %d step %d: %s\nlast steps:\n  %s", seed, len(trace), fmt.Sprintf(format, args...), strings.Join(trace[start:], "\n  "))
	}
	same := func(what string, got, want error) {
		t.Helper()
		if want == nil && got != nil || want != nil && !errors.Is(got, want) {
			fail("%s: got %v, want %v", what, got, want)
		}
	}
	// Pickers favour live records, where the interesting decisions are, but still return
	// decided and ended ones often enough to exercise replays.
	pickReq := func() *mReq {
		var pending []*mReq
		for _, r := range m.reqs {
			if m.reqStatus(r) == consent.RequestPending {
				pending = append(pending, r)
			}
		}
		switch {
		case len(pending) > 0 && rng.IntN(3) > 0:
			return pending[rng.IntN(len(pending))]
		case len(m.reqs) > 0:
			return m.reqs[rng.IntN(len(m.reqs))]
		}
		return nil
	}
	pickGrant := func() *mGrant {
		var live []*mGrant
		for _, g := range m.grants {
			if m.active(g) {
				live = append(live, g)
			}
		}
		switch {
		case len(live) > 0 && rng.IntN(4) > 0:
			return live[rng.IntN(len(live))]
		case len(m.grants) > 0:
			return m.grants[rng.IntN(len(m.grants))]
		}
		return nil
	}
	reader, logStart, logEnd := modelLogs(t, e)
	var lastReconcile time.Time
	reads := 0
	durations := []string{"1h", "2h", "24h", "72h", "720h", consent.UntilRevokedText}
	approvals := []string{"", "", "", "1h", "30m", "48h", "800h", consent.UntilRevokedText}
	// Mostly small steps, so grants live through many operations, and now and then a leap
	// across claim windows, grant ends and the 90-day re-confirmation.
	advances := []time.Duration{time.Minute, time.Minute, 10 * time.Minute, 10 * time.Minute, time.Hour, time.Hour,
		3 * time.Hour, 24 * time.Hour, 3 * 24 * time.Hour, 10 * 24 * time.Hour, 40 * 24 * time.Hour}
	allows, denials := 0, 0

	for step := range steps {
		op := rng.IntN(100)
		switch {
		case op < 10: // an agent asks
			tk := m.tickets[rng.IntN(len(m.tickets))]
			if rng.IntN(4) > 0 { // mostly open tickets
				var open []*mTicket
				for _, x := range m.tickets {
					if !x.done && !x.unknown {
						open = append(open, x)
					}
				}
				if len(open) > 0 {
					tk = open[rng.IntN(len(open))]
				}
			}
			who := staff[rng.IntN(len(staff))]
			all := streams[tk.tenant]
			chosen := []string{all[rng.IntN(2)]}
			if rng.IntN(2) == 0 {
				chosen = slices.Clone(all)
			}
			to := e.clock.Now().Add(-time.Duration(rng.IntN(72)+1) * time.Hour)
			from := to.Add(-time.Duration(rng.IntN(30*24)+1) * time.Hour)
			dur := durations[rng.IntN(len(durations))]
			trace = append(trace, fmt.Sprintf("%d request %s by %s %v %s", step, tk.key, who.Name, chosen, dur))
			n := e.tickets.count()
			r, err := e.svc.RequestAccess(ctx, who, consent.RequestInput{TicketKey: tk.key,
				Reason: "Investigating the reported failure", Streams: chosen, From: from, To: to, Duration: dur})
			var ve *consent.ValidationError
			switch {
			case tk.unknown:
				if !errors.As(err, &ve) || !errors.Is(err, consent.ErrTicketUnknown) {
					fail("request on an uninstalled tenant's ticket: %v", err)
				}
			case tk.done:
				if !errors.As(err, &ve) {
					fail("request on a resolved ticket: %v", err)
				}
			case err != nil:
				fail("request: %v", err)
			default:
				d, _ := consent.ParseDuration(dur)
				mr := &mReq{id: r.ID, token: e.lastAnnounced(t), ticket: tk.key, agent: who, status: consent.RequestPending,
					expiresAt: e.clock.Now().Add(consent.DefaultClaimWindow), dur: d}
				if e.tickets.count() != n+1 {
					fail("request posted %d comments", e.tickets.count()-n)
				}
				m.reqs = append(m.reqs, mr)
				m.reqByID[mr.id] = mr
				m.comments++
				m.windows[mr.id], m.scopes[mr.id] = [2]time.Time{from, to}, chosen
			}

		case op < 26: // the customer approves
			r := pickReq()
			if r == nil {
				continue
			}
			dur := approvals[rng.IntN(len(approvals))]
			trace = append(trace, fmt.Sprintf("%d approve %s (%s) with %q", step, r.id, m.reqStatus(r), dur))
			g, err := e.approve(ctx, r.token, dur)
			want := m.decideErr(r)
			d := r.dur
			if want == nil && dur != "" {
				pd, perr := consent.ParseDuration(dur)
				if perr != nil || !pd.AtMost(r.dur) {
					var ve *consent.ValidationError
					if !errors.As(err, &ve) {
						fail("approve with %q over %s: %v, want a validation error", dur, r.dur, err)
					}
					continue
				}
				d = pd
			}
			var mg *mGrant
			if want == nil && r.reconfirms != "" {
				mg = m.grantsBy[r.reconfirms]
				if !m.active(mg) {
					want = consent.ErrGone
				}
			}
			same("approve", err, want)
			if want != nil {
				continue
			}
			now := e.clock.Now()
			if mg == nil {
				w := m.windows[r.id]
				mg = &mGrant{id: g.ID, ticket: r.ticket, agent: r.agent, streams: m.scopes[r.id], from: w[0], to: w[1], status: consent.GrantActive}
				m.grants = append(m.grants, mg)
				m.grantsBy[mg.id] = mg
				r.grant = mg.id
			} else if g.ID != mg.id {
				fail("re-confirmation made grant %s, want %s renewed", g.ID, mg.id)
			}
			mg.untilRevoked, mg.end, mg.reconfirmBy, mg.reconfirmReq = d.UntilRevoked, time.Time{}, time.Time{}, ""
			if d.UntilRevoked {
				mg.reconfirmBy = now.Add(consent.ReconfirmPeriod)
			} else {
				mg.end = now.Add(d.D)
			}
			r.status, r.dur = consent.RequestApproved, d
			m.comments++

		case op < 29: // the customer denies
			r := pickReq()
			if r == nil {
				continue
			}
			trace = append(trace, fmt.Sprintf("%d deny %s (%s)", step, r.id, m.reqStatus(r)))
			err := e.deny(ctx, r.token, "")
			want := m.decideErr(r)
			same("deny", err, want)
			if want != nil {
				continue
			}
			r.status = consent.RequestDenied
			m.comments++
			if g := m.grantsBy[r.reconfirms]; g != nil && m.active(g) {
				m.end(g, consent.GrantRevoked)
			}

		case op < 32: // the customer revokes
			r := pickReq()
			if r == nil {
				continue
			}
			trace = append(trace, fmt.Sprintf("%d customer revokes via %s", step, r.id))
			err := e.revokeByCustomer(ctx, r.token)
			g := m.grantsBy[r.grant]
			if g == nil {
				g = m.grantsBy[r.reconfirms]
			}
			var want error
			if g == nil || !m.active(g) {
				want = consent.ErrNoActiveGrant
			}
			same("customer revoke", err, want)
			if want == nil {
				m.end(g, consent.GrantRevoked)
			}

		case op < 36: // staff revoke
			g := pickGrant()
			if g == nil {
				continue
			}
			who := staff[rng.IntN(len(staff))]
			trace = append(trace, fmt.Sprintf("%d %s revokes %s (agent %s)", step, who.Name, g.id, g.agent.Name))
			err := e.svc.RevokeGrant(ctx, who, g.id)
			var want error
			switch {
			case who.Kind != consent.ActorAdmin && who.Subject != g.agent.Subject:
				want = consent.ErrForbidden
			case !m.active(g):
				want = consent.ErrNoActiveGrant
			}
			same("staff revoke", err, want)
			if want == nil {
				m.end(g, consent.GrantRevoked)
			}

		case op < 39: // staff cancel a request
			r := pickReq()
			if r == nil {
				continue
			}
			who := staff[rng.IntN(len(staff))]
			trace = append(trace, fmt.Sprintf("%d %s cancels %s (%s)", step, who.Name, r.id, m.reqStatus(r)))
			err := e.svc.CancelRequest(ctx, who, r.id)
			want := m.decideErr(r)
			if who.Kind != consent.ActorAdmin && who.Subject != r.agent.Subject {
				want = consent.ErrForbidden
			}
			same("cancel", err, want)
			if want == nil {
				r.status = consent.RequestCancelled
				m.comments++
			}

		case op < 47: // time passes
			d := advances[rng.IntN(len(advances))]
			trace = append(trace, fmt.Sprintf("%d advance %v", step, d))
			e.clock.Advance(d)

		case op < 54: // a scheduler pass
			trace = append(trace, fmt.Sprintf("%d tick", step))
			n := e.tickets.count()
			ask := m.tick()
			if err := e.svc.Tick(ctx); err != nil {
				fail("Tick: %v", err)
			}
			// Learn the re-confirmation links the pass posted, and check they are the ones
			// the model expects.
			var asked []string
			for _, c := range e.commentsSince(n) {
				mt := pageRE.FindStringSubmatch(c.Body)
				if mt == nil {
					continue
				}
				v, err := e.view(ctx, mt[1])
				if err != nil && !errors.Is(err, consent.ErrGone) {
					fail("View(re-confirmation link): %v", err)
				}
				if err != nil || v.Request.Status != consent.RequestPending {
					continue // withdrawn in the same pass (ticket resolved)
				}
				asked = append(asked, v.Request.Reconfirms)
				g := m.grantsBy[v.Request.Reconfirms]
				rr := &mReq{id: v.Request.ID, token: mt[1], ticket: g.ticket, agent: g.agent, status: consent.RequestPending,
					expiresAt: g.reconfirmBy, dur: consent.Duration{UntilRevoked: true}, reconfirms: g.id}
				m.reqs = append(m.reqs, rr)
				m.reqByID[rr.id] = rr
				g.reconfirmReq = rr.id
				m.windows[rr.id], m.scopes[rr.id] = [2]time.Time{g.from, g.to}, g.streams
			}
			// Asks on tickets resolved without a webhook are withdrawn in the same pass.
			var live []string
			for _, id := range ask {
				if !m.ticket(m.grantsBy[id].ticket).silent {
					live = append(live, id)
				}
			}
			slices.Sort(live)
			slices.Sort(asked)
			if !slices.Equal(live, asked) {
				fail("re-confirmations asked for %v, want %v", asked, live)
			}
			for _, id := range ask {
				if g := m.grantsBy[id]; m.ticket(g.ticket).silent {
					// The model cannot see the withdrawn request's id; mark the grant asked,
					// which is what the service did before withdrawing it.
					g.reconfirmReq = "withdrawn"
				}
			}
			// The service reconciles at most once per ReconcileEvery of its clock: a second
			// pass at the same instant skips it.
			if now := e.clock.Now(); lastReconcile.IsZero() || now.After(lastReconcile) {
				m.reconcile()
				lastReconcile = now
			}

		case op < 55: // the Jira webhook: ticket resolved
			tk := m.tickets[rng.IntN(len(m.tickets))]
			trace = append(trace, fmt.Sprintf("%d webhook: %s resolved", step, tk.key))
			e.tickets.setDone(tk.key)
			if err := e.svc.TicketClosed(ctx, tk.key); err != nil {
				fail("TicketClosed: %v", err)
			}
			tk.done = true
			m.endTicket(tk.key)
			addTicket(tk.tenant)

		case op < 56 && rng.IntN(2) == 0: // ticket resolved, webhook lost
			tk := m.tickets[rng.IntN(len(m.tickets))]
			trace = append(trace, fmt.Sprintf("%d %s resolved silently", step, tk.key))
			e.tickets.setDone(tk.key)
			tk.done, tk.silent = true, true
			addTicket(tk.tenant)

		case op < 57 && rng.IntN(4) == 0: // the tenant uninstalls (and reinstalls later)
			tenant := []string{"tenant-a", "tenant-b"}[rng.IntN(2)]
			trace = append(trace, fmt.Sprintf("%d uninstall %s", step, tenant))
			if err := e.svc.TenantUninstalled(ctx, tenant); err != nil {
				fail("TenantUninstalled: %v", err)
			}
			for _, tk := range m.tickets {
				if tk.tenant == tenant && !tk.unknown {
					m.endTicket(tk.key)
					tk.unknown = true
					e.tickets.forget(tk.key)
				}
			}
			addTicket(tenant)
			addTicket(tenant)

		default: // a log read is checked
			g := pickGrant()
			who := staff[rng.IntN(len(staff))]
			if g == nil {
				continue
			}
			if rng.IntN(2) == 0 {
				who = g.agent
			}
			var stream string
			if rng.IntN(4) == 0 {
				stream = []string{"api", "worker", "web"}[rng.IntN(3)]
			} else {
				stream = g.streams[rng.IntN(len(g.streams))]
			}
			from, to := g.from, g.to
			switch rng.IntN(5) {
			case 0:
				from = from.Add(-time.Second)
			case 1:
				to = to.Add(time.Second)
			case 2:
				span := to.Sub(from)
				from = from.Add(time.Duration(rng.Int64N(int64(span))))
				to = from.Add(time.Duration(rng.Int64N(int64(g.to.Sub(from)) + 1)))
			}
			id := g.id
			if rng.IntN(20) == 0 {
				id = "gr_" + strings.Repeat("0", 32)
			}
			trace = append(trace, fmt.Sprintf("%d authorize %s for %s on %s", step, id, who.Name, stream))
			_, err := e.svc.Authorize(ctx, id, who, stream, from, to)
			var want error
			switch {
			case id != g.id || !m.active(g):
				want = consent.ErrNoActiveGrant
			case who.Subject != g.agent.Subject:
				want = consent.ErrForbidden
			case !slices.Contains(g.streams, stream) || from.Before(g.from) || to.After(g.to):
				want = consent.ErrOutOfScope
			}
			if err == nil && want != nil {
				fail("Authorize ALLOWED what the model denies (%v)", want)
			}
			same("authorize", err, want)
			if want == nil {
				allows++
			} else {
				denials++
			}
			// One check in four is also a real read through logaccess, which clips the window
			// to the grant's: every line it serves must be the grant's tenant's, from a
			// granted stream, inside both windows, and the receipt must hash what was sent.
			if rng.IntN(4) == 0 && !from.Before(logStart) && !to.After(logEnd) {
				reads++
				checkRead(t, e, reader, m, g, id, who, stream, from, to, fail)
			}
		}
		if got := e.tickets.count(); got != m.comments {
			fail("comments posted = %d, model expects %d", got, m.comments)
		}
		if step%100 == 99 || step == steps-1 {
			checkStatuses(t, e, m, fail)
		}
	}
	if allows < 20 || denials < 20 || reads < 20 {
		t.Errorf("weak run: %d reads allowed, %d denied, %d real reads", allows, denials, reads)
	}
	for _, tenant := range []string{"tenant-a", "tenant-b"} {
		res, err := e.audit.Verify(ctx, tenant)
		if err != nil || !res.OK {
			t.Errorf("audit chain of %s: %+v, %v", tenant, res, err)
		}
	}
	t.Logf("seed %d: %d requests, %d grants, %d comments, %d reads allowed, %d denied, %d real reads",
		seed, len(m.reqs), len(m.grants), m.comments, allows, denials, reads)
}

func checkStatuses(t *testing.T, e *env, m *model, fail func(string, ...any)) {
	t.Helper()
	for _, r := range m.reqs {
		got, err := e.svc.GetRequest(ctx, r.id)
		if err != nil {
			fail("GetRequest(%s): %v", r.id, err)
		}
		if want := m.reqStatus(r); got.Status != want {
			fail("request %s status %q, model says %q", r.id, got.Status, want)
		}
	}
	for _, g := range m.grants {
		got, err := e.svc.GetGrant(ctx, g.id)
		if err != nil {
			fail("GetGrant(%s): %v", g.id, err)
		}
		if want := m.grantStatus(g); got.Status != want {
			fail("grant %s status %q, model says %q", g.id, got.Status, want)
		}
	}
}

// modelLogs writes a line an hour for every stream of both tenants over the time the model
// runs in, each line naming its tenant and stream, and returns a reader over them and the
// span they cover.
func modelLogs(t *testing.T, e *env) (*logaccess.Service, time.Time, time.Time) {
	t.Helper()
	root := t.TempDir()
	start := e.clock.Now().Add(-40 * 24 * time.Hour).Truncate(24 * time.Hour)
	end := e.clock.Now().Add(120 * 24 * time.Hour).Truncate(24 * time.Hour)
	for tenant, streams := range map[string][]string{"tenant-a": {"api", "worker"}, "tenant-b": {"api", "web"}} {
		for _, stream := range streams {
			dir := filepath.Join(root, tenant, stream)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for day := start; day.Before(end); day = day.Add(24 * time.Hour) {
				var b strings.Builder
				for h := range 24 {
					fmt.Fprintf(&b, `{"time":%q,"tenant":%q,"stream":%q,"user":"someone@customer.example"}`+"\n",
						day.Add(time.Duration(h)*time.Hour).Format(time.RFC3339), tenant, stream)
				}
				if err := os.WriteFile(filepath.Join(dir, day.Format("2006-01-02")+".log"), []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	r, err := logaccess.New(logaccess.Options{Consent: e.svc, Logs: logstore.New(logstore.NewDir(root)),
		Secrets: noSecrets{}, PseudonymKey: []byte("model-test-pseudonym-key-0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	return r, start, end
}

type noSecrets struct{}

func (noSecrets) SharedSecret(context.Context, string) (secret.Secret, error) {
	return secret.Secret{}, nil
}

// captured keeps what a read sent.
type captured struct{ b []byte }

func (c *captured) Write(l logaccess.Line) ([]byte, error) {
	line := []byte(l.Time.UTC().Format(time.RFC3339) + " " + l.Stream + " " + l.Text + "\n")
	c.b = append(c.b, line...)
	return line, nil
}

func (c *captured) Flush() error { return nil }

func checkRead(t *testing.T, e *env, reader *logaccess.Service, m *model, g *mGrant, id string, who consent.Actor,
	stream string, from, to time.Time, fail func(string, ...any)) {
	t.Helper()
	lo, hi := from, to
	if lo.Before(g.from) {
		lo = g.from
	}
	if hi.After(g.to) {
		hi = g.to
	}
	var want error
	switch {
	case id != g.id || !m.active(g):
		want = consent.ErrNoActiveGrant
	case who.Subject != g.agent.Subject:
		want = consent.ErrForbidden
	case !slices.Contains(g.streams, stream):
		want = consent.ErrOutOfScope
	case !lo.Before(hi):
		want = logaccess.ErrOutsideWindow
	}
	read, err := reader.Open(ctx, logaccess.Request{GrantID: id, Agent: who, Stream: stream, From: from, To: to})
	if id != g.id && errors.Is(err, consent.ErrNotFound) {
		err = consent.ErrNoActiveGrant // an unknown grant id: nothing to read either way
	}
	if want != nil {
		if err == nil {
			fail("read ALLOWED what the model denies (%v)", want)
		}
		return
	}
	if err != nil {
		fail("read refused what the model allows: %v", err)
	}
	var out captured
	rc := read.Stream(ctx, &out)
	if rc.End != logaccess.EndComplete {
		fail("read ended %q", rc.End)
	}
	sum := sha256.Sum256(out.b)
	if rc.SHA256 != hex.EncodeToString(sum[:]) || rc.Bytes != int64(len(out.b)) {
		fail("receipt %+v does not match the %d bytes sent", rc, len(out.b))
	}
	tenant := m.ticket(g.ticket).tenant
	for _, line := range strings.Split(strings.TrimSuffix(string(out.b), "\n"), "\n") {
		if line == "" {
			continue
		}
		ts, err := time.Parse(time.RFC3339, line[:strings.IndexByte(line, ' ')])
		if err != nil || ts.Before(lo) || !ts.Before(hi) {
			fail("served a line at %v outside [%v, %v)", ts, lo, hi)
		}
		if !strings.Contains(line, `"tenant":"`+tenant+`"`) || !strings.Contains(line, `"stream":"`+stream+`"`) {
			fail("served another tenant's or stream's line: %s", line)
		}
		if strings.Contains(line, "someone@customer.example") {
			fail("served personal data the grant did not allow: %s", line)
		}
	}
	as, err := e.store.Accesses(ctx, tenant, g.id)
	if err != nil || len(as) == 0 || as[len(as)-1].SHA256 != rc.SHA256 {
		fail("no receipt recorded for the read (%v)", err)
	}
}
