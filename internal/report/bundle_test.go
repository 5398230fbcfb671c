package report

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/supportbridge/supportbridge/internal/tenant"
)

const bundleSchemaPath = "../../api/support-bundle.schema.json"

// compileBundleSchema compiles the published schema with format assertions on, so that
// date-times and addresses are checked too.
func compileBundleSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(bundleSchemaPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	const url = "https://github.com/supportbridge/supportbridge/api/support-bundle.schema.json"
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func validateBundle(t *testing.T, sch *jsonschema.Schema, js []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return sch.Validate(inst)
}

func TestBundleMatchesSchema(t *testing.T) {
	sch := compileBundleSchema(t)
	in, atts := canaryRequest(t)
	full, _, err := Build(in, atts, testContext())
	if err != nil {
		t.Fatal(err)
	}
	many := Input{Summary: "s", RecentErrors: make([]RecentErrorInput, 50)}
	for i := range many.RecentErrors {
		many.RecentErrors[i] = RecentErrorInput{Message: "m", OccurredAt: "2025-01-31T14:04:00.5-03:00"}
	}
	withErrors, _, err := Build(many, nil, testContext())
	if err != nil {
		t.Fatal(err)
	}
	minimal, _, err := Build(Input{Summary: "s"}, nil, BuildContext{
		ID: NewID(), Marker: NewMarker(), Now: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	forgeOnly := tenant.Tenant{ClientKey: "cloud-9", CloudID: "cloud-9", ForgeInstallationID: "inst-9", ForgeAppID: "ari:cloud:ecosystem::app/9"}

	tests := []struct {
		name string
		r    Report
		t    tenant.Tenant
	}{
		{"full", full, testTenant()},
		{"fifty recent errors", withErrors, testTenant()},
		{"minimal", minimal, tenant.Tenant{ClientKey: "ck"}},
		{"forge only", minimal, forgeOnly},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js, err := NewBundle(tt.r, tt.t, "").JSON()
			if err != nil {
				t.Fatal(err)
			}
			if err := validateBundle(t, sch, js); err != nil {
				t.Errorf("bundle does not match the schema: %v\n%s", err, js)
			}
		})
	}
}

// TestSchemaIsStrict checks that the schema would catch a bundle that grew a field, lost
// one, or carried the secret, so that the test above means something.
func TestSchemaIsStrict(t *testing.T) {
	sch := compileBundleSchema(t)
	r, _, err := Build(Input{Summary: "s"}, nil, testContext())
	if err != nil {
		t.Fatal(err)
	}
	js, err := NewBundle(r, testTenant(), "").JSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := validateBundle(t, sch, js); err != nil {
		t.Fatalf("the base bundle must be valid: %v", err)
	}
	tests := map[string]func(m map[string]any){
		"shared secret in account": func(m map[string]any) { m["account"].(map[string]any)["sharedSecret"] = "x" },
		"unknown top-level field":  func(m map[string]any) { m["tenant"] = map[string]any{} },
		"missing marker":           func(m map[string]any) { delete(m, "marker") },
		"bad receivedAt":           func(m map[string]any) { m["receivedAt"] = "yesterday" },
		"wrong schemaVersion":      func(m map[string]any) { m["schemaVersion"] = 2 },
		"unknown media type": func(m map[string]any) {
			m["attachments"] = []any{map[string]any{"id": "a", "filename": "a.exe", "mediaType": "application/x-msdownload", "size": 1}}
		},
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(js, &m); err != nil {
				t.Fatal(err)
			}
			mutate(m)
			bad, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if validateBundle(t, sch, bad) == nil {
				t.Errorf("schema accepted %s", bad)
			}
		})
	}
}

// TestBundleNeverContainsSharedSecret builds a bundle from a report that did not go through
// Build and a tenant whose secret was copied into other fields: the secret must still not
// appear anywhere.
func TestBundleNeverContainsSharedSecret(t *testing.T) {
	ten := testTenant()
	ten.Description = "install note " + canary
	ten.OAuthClientID = "oauth-" + canary
	r := Report{
		ID: "r1", Marker: "sbm" + strings.Repeat("a", 26), Summary: canary, Description: canary,
		AccountID: canary, Email: "ann@customer.example", EmailSource: EmailFromSite,
		Operation:    Operation{Name: canary, RequestIDs: []string{canary}, ErrorMessage: canary, Stack: canary},
		RecentErrors: []RecentError{{Message: canary, Source: canary}},
		Environment:  Environment{URL: canary, UserAgent: canary, Locale: canary, Timezone: canary, Screen: canary, Browser: canary, BrowserVersion: canary, OS: canary},
		Attachments:  []AttachmentMeta{{ID: canary, Filename: canary, MediaType: "text/plain"}},
		Redactions:   map[string]int{canary: 1},
	}
	js, err := NewBundle(r, ten, canary).JSON()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(js), canary) {
		t.Errorf("bundle contains the shared secret:\n%s", js)
	}
	if !strings.Contains(string(js), "oauth-[redacted]") {
		t.Errorf("expected the copied secret to be replaced in place:\n%s", js)
	}
}

func TestNewBundle(t *testing.T) {
	r, _, err := Build(Input{Summary: "s", Operation: OperationInput{RequestIDs: []string{"q"}}},
		[]Attachment{{AttachmentMeta: AttachmentMeta{Filename: "a.png", MediaType: "image/png", Size: 3}, Content: []byte("png")}},
		testContext())
	if err != nil {
		t.Fatal(err)
	}
	r.Email, r.EmailSource = "ann@customer.example", EmailFromSite // as the worker sets them
	got := NewBundle(r, testTenant(), "")
	want := Bundle{
		SchemaVersion: BundleSchemaVersion, ReportID: r.ID, Marker: r.Marker, ReceivedAt: testNow, Summary: "s",
		Account: BundleAccount{
			AppKey: "com.vendor.app", ProductType: "jira", ClientKey: "client-key-1",
			BaseURL: "https://acme.atlassian.net", DisplayURL: "https://jira.acme.example",
			ServiceEntitlementNumber: "SEN-123", EntitlementID: "ent-1", EntitlementNumber: "E-1",
			OAuthClientID: "oauth-1", InstallationID: "ari:cloud:ecosystem::installation/1", CloudID: "cloud-1",
		},
		Reporter:     BundleReporter{AccountID: "5b10ac8d82e05b22cc7d4ef5", Email: "ann@customer.example", EmailSource: EmailFromSite},
		Operation:    Operation{RequestIDs: []string{"q"}},
		RecentErrors: []RecentError{},
		Environment:  r.Environment,
		Attachments:  []AttachmentMeta{{ID: r.ID + "-1", Filename: "a.png", MediaType: "image/png", Size: 3}},
		Redactions:   map[string]int{},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bundle (-want +got):\n%s", diff)
	}
	if got := NewBundle(r, testTenant(), "com.vendor.other").Account.AppKey; got != "com.vendor.other" {
		t.Errorf("app key: got %q, want the one given", got)
	}
}

func TestSecretHider(t *testing.T) {
	tests := []struct{ secret, in, want string }{
		{"", "abc", "abc"},
		{"short", "a short one", "a short one"}, // below the scrubber's minimum, as there
		{"redacted", "x redacted y", "x redacted y"},
		{canary, "a" + canary + canary + "b", "a[redacted][redacted]b"},
		// A marker next to another spells the secret again; replacing goes on until it is gone.
		{"d][redac", "d][redacd][redac", "[redacte[redacted]ted]"},
	}
	for _, tt := range tests {
		if got := secretHider(tt.secret)(tt.in); got != tt.want {
			t.Errorf("hide %q in %q: got %q, want %q", tt.secret, tt.in, got, tt.want)
		}
	}
}
