package connect

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDescriptor(t *testing.T) {
	got := Descriptor(DescriptorConfig{
		Key:        "com.example.supportbridge",
		Name:       "Support Bridge",
		BaseURL:    "https://sb.example.com/",
		Scopes:     []string{"read", " Write ", ""},
		VendorName: "Example Ltd",
		VendorURL:  "https://example.com",
	})
	// Compare the JSON Atlassian receives, not Go types.
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var gotJSON map[string]any
	if err := json.Unmarshal(b, &gotJSON); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	const wantJSON = `{
	  "key": "com.example.supportbridge",
	  "name": "Support Bridge",
	  "baseUrl": "https://sb.example.com",
	  "apiVersion": 1,
	  "vendor": {"name": "Example Ltd", "url": "https://example.com"},
	  "authentication": {"type": "jwt"},
	  "lifecycle": {
	    "installed": "/connect/installed",
	    "uninstalled": "/connect/uninstalled",
	    "enabled": "/connect/enabled",
	    "disabled": "/connect/disabled"
	  },
	  "apiMigrations": {"signed-install": true, "context-qsh": true},
	  "scopes": ["READ", "WRITE"],
	  "modules": {
	    "dialogs": [{
	      "key": "report-problem-dialog",
	      "url": "/connect/report-dialog",
	      "options": {"size": "medium", "chrome": false, "header": {"value": "Report a problem"}}
	    }],
	    "webItems": [{
	      "key": "report-problem",
	      "name": {"value": "Report a problem"},
	      "location": "system.top.navigation.bar",
	      "context": "addon",
	      "url": "/connect/report-dialog",
	      "target": {"type": "dialogmodule", "options": {"key": "report-problem-dialog"}}
	    }],
	    "adminPages": [{
	      "key": "support-access",
	      "name": {"value": "Support access"},
	      "url": "/connect/support-access"
	    }]
	  }
	}`
	var want map[string]any
	if err := json.Unmarshal([]byte(wantJSON), &want); err != nil {
		t.Fatalf("want: %v", err)
	}
	if diff := cmp.Diff(want, gotJSON); diff != "" {
		t.Errorf("descriptor (-want +got):\n%s", diff)
	}
}

func TestDescriptorWithoutVendor(t *testing.T) {
	got := Descriptor(DescriptorConfig{Key: "k", Name: "n", BaseURL: "https://sb.example.com"})
	if _, ok := got["vendor"]; ok {
		t.Errorf("got a vendor block without a vendor name")
	}
	if diff := cmp.Diff([]string{}, got["scopes"]); diff != "" {
		t.Errorf("scopes (-want +got):\n%s", diff)
	}
}

// The web item must open a dialog that exists, or Atlassian rejects the descriptor.
func TestDescriptorWebItemTargetsDialog(t *testing.T) {
	mods := Descriptor(DescriptorConfig{Key: "k"})["modules"].(map[string]any)
	dialogKeys := map[any]bool{}
	for _, d := range mods["dialogs"].([]any) {
		dialogKeys[d.(map[string]any)["key"]] = true
	}
	for _, w := range mods["webItems"].([]any) {
		target := w.(map[string]any)["target"].(map[string]any)
		key := target["options"].(map[string]any)["key"]
		if !dialogKeys[key] {
			t.Errorf("web item targets dialog %v, which the descriptor does not declare", key)
		}
	}
}
