package httpapi

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var (
	evidenceSchemaOnce sync.Once
	evidenceSchema     *jsonschema.Schema
	evidenceSchemaErr  error
)

// validateEvidence checks an evidence pack against api/evidence-pack.schema.json, with
// format assertions on.
func validateEvidence(t testing.TB, body []byte) {
	t.Helper()
	evidenceSchemaOnce.Do(func() {
		f, err := os.Open("../../api/evidence-pack.schema.json")
		if err != nil {
			evidenceSchemaErr = err
			return
		}
		defer f.Close()
		doc, err := jsonschema.UnmarshalJSON(f)
		if err != nil {
			evidenceSchemaErr = err
			return
		}
		const url = "https://github.com/supportbridge/supportbridge/api/evidence-pack.schema.json"
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		if err := c.AddResource(url, doc); err != nil {
			evidenceSchemaErr = err
			return
		}
		evidenceSchema, evidenceSchemaErr = c.Compile(url)
	})
	if evidenceSchemaErr != nil {
		t.Fatalf("evidence schema: %v", evidenceSchemaErr)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("evidence pack is not JSON: %v", err)
	}
	if err := evidenceSchema.Validate(inst); err != nil {
		t.Errorf("evidence pack does not match api/evidence-pack.schema.json: %v\n%s", err, body)
	}
}

// TestEvidenceSchemaIsStrict: the schema catches a pack that grew a field or lost one.
func TestEvidenceSchemaIsStrict(t *testing.T) {
	ch := newConsentHarness(t)
	grant := ch.approvedGrant(nil)
	ch.readLogs(aliceToken, grant, "?stream=app", nil)
	_, _, body := ch.agent("GET", "/api/v1/tickets/"+consentTicket+"/evidence", bearer(aliceToken), nil)
	validateEvidence(t, body)
	for name, bad := range map[string]string{
		"extra field":     strings.Replace(string(body), `"chainOk":`, `"extra":1,"chainOk":`, 1),
		"missing sha":     strings.Replace(string(body), `"sha256":"`, `"sha256":"x`, 1),
		"bad status":      strings.Replace(string(body), `"status":"approved"`, `"status":"maybe"`, 1),
		"no verification": strings.Replace(string(body), `"verification":`, `"verificationX":`, 1),
	} {
		inst, _ := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		if evidenceSchema.Validate(inst) == nil {
			t.Errorf("schema accepted a pack with %s", name)
		}
	}
}
