package sitesandbox

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// TestResponseValidation checks that the answer check can fail: an answer Jira would never
// give (BulkPermissionGrants without projectPermissions, the shape in Jira's own example) is
// recorded as a sandbox bug. Without it, the violation check of every other test would pass
// whatever the site answered.
func TestResponseValidation(t *testing.T) {
	path, ok := SpecPathFromEnv()
	if !ok {
		if os.Getenv("CI") == "true" {
			t.Fatalf("platform spec %q not found (set SB_JIRA_SPEC)", path)
		}
		t.Skipf("platform spec %q not found (set SB_JIRA_SPEC)", path)
	}
	spec, err := LoadSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, body string
		wantErr    bool
	}{
		{"what the site answers", `{"globalPermissions":["ADMINISTER"],"projectPermissions":[]}` + "\n", false},
		{"projectPermissions missing", `{"globalPermissions":["ADMINISTER"]}`, true},
		{"globalPermissions null", `{"globalPermissions":null,"projectPermissions":[]}`, true},
		{"extra field", `{"globalPermissions":[],"projectPermissions":[],"admin":true}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"accountId":"a","globalPermissions":["ADMINISTER"]}`
			req := httptest.NewRequest(http.MethodPost, "/rest/api/3/permissions/check", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			check, err := spec.validateRequest(req, []byte(body))
			if err != nil {
				t.Fatalf("request refused: %v", err)
			}
			rec := &recorder{ResponseWriter: httptest.NewRecorder()}
			writeRaw(rec, tt.body)
			err = check.response(req, rec)
			if (err != nil) != tt.wantErr {
				t.Errorf("response error %v, want error %t", err, tt.wantErr)
			}
		})
	}
}

func writeRaw(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(body))
}
