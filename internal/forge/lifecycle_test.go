package forge_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/supportbridge/supportbridge/internal/forge"
	"github.com/supportbridge/supportbridge/internal/forge/forgetest"
)

// installedBody is shaped like the example in Atlassian's lifecycle event reference, as a
// remote receives it (eventType and a site ARI context included).
const installedBody = `{
  "app": {
    "id": "6f1c8e5a-3b2d-4c1e-9a7f-2d4b6c8e0a1f",
    "name": "supportbridge",
    "ownerAccountId": "557058:6ea56496-8c9b-4e0a-bc03-7412dedb3304",
    "version": "5.2.0"
  },
  "context": "ari:cloud:jira::site/4869c4ef-cb0d-4108-8243-8929ac7cc1fa",
  "environment": {"id": "e62535ae-72f9-49da-a8d3-c0b82cab4ca1"},
  "eventType": "avi:forge:installed:app",
  "id": "8d5f651a-b2e9-4b38-aac6-30abc7f3effb",
  "installerAccountId": "557058:6ea56496-8c9b-4e0a-bc03-7412dedb3304"
}`

func TestParseLifecycleEvent(t *testing.T) {
	installed := forge.LifecycleEvent{
		EventType:          forge.EventInstalled,
		InstallationID:     "8d5f651a-b2e9-4b38-aac6-30abc7f3effb",
		CloudID:            forgetest.CloudID,
		AppID:              "6f1c8e5a-3b2d-4c1e-9a7f-2d4b6c8e0a1f",
		AppVersion:         "5.2.0",
		EnvironmentID:      "e62535ae-72f9-49da-a8d3-c0b82cab4ca1",
		InstallerAccountID: "557058:6ea56496-8c9b-4e0a-bc03-7412dedb3304",
	}
	tests := []struct {
		name string
		body string
		want forge.LifecycleEvent
	}{
		{name: "installed", body: installedBody, want: installed},
		{
			name: "upgraded names the upgrader",
			body: `{"eventType":"avi:forge:upgraded:app","id":"i-1","context":"ari:cloud:confluence::site/c-1",
				"upgraderAccountId":"u-1","app":{"id":"a-1","version":"6.0.0"}}`,
			want: forge.LifecycleEvent{EventType: forge.EventUpgraded, InstallationID: "i-1", CloudID: "c-1",
				AppID: "a-1", AppVersion: "6.0.0", InstallerAccountID: "u-1"},
		},
		{
			name: "uninstalled with the minimum",
			body: `{"eventType":"avi:forge:uninstalled:app","id":"i-1","context":"ari:cloud:jira::site/c-1"}`,
			want: forge.LifecycleEvent{EventType: forge.EventUninstalled, InstallationID: "i-1", CloudID: "c-1"},
		},
		{
			name: "context as an object, nulls as absent, unknown fields allowed",
			body: `{"eventType":"avi:forge:installed:app","id":"i-1","context":{"cloudId":"c-1","moduleKey":"m"},
				"installerAccountId":null,"environment":{"id":"e-1","type":"PRODUCTION"},"license":{"active":true}}`,
			want: forge.LifecycleEvent{EventType: forge.EventInstalled, InstallationID: "i-1", CloudID: "c-1",
				EnvironmentID: "e-1", EnvironmentType: "PRODUCTION"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := forge.ParseLifecycleEvent([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseLifecycleEvent: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("event mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseLifecycleEventRejects(t *testing.T) {
	f := func(path, msg string) forge.FieldError { return forge.FieldError{Path: path, Message: msg} }
	tests := []struct {
		name string
		body string
		want []forge.FieldError
	}{
		{"empty", ``, []forge.FieldError{f("", "body must be a JSON object")}},
		{"array", `[]`, []forge.FieldError{f("", "body must be a JSON object")}},
		{"null", `null`, []forge.FieldError{f("", "body must be a JSON object")}},
		{"truncated", `{"eventType":`, []forge.FieldError{f("", "body is not valid JSON")}},
		{"trailing object", installedBody + `{}`, []forge.FieldError{f("", "body must contain a single JSON object")}},
		{"trailing garbage", installedBody + ` x`, []forge.FieldError{f("", "body must contain a single JSON object")}},
		{"duplicate key", `{"id":"a","id":"b"}`, []forge.FieldError{f("", "body has a duplicate key")}},
		{"nested duplicate key", `{"app":{"id":"a","id":"b"}}`, []forge.FieldError{f("", "body has a duplicate key")}},
		{"deep nesting", `{"x":` + strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40) + `}`, []forge.FieldError{f("", "body is nested too deeply")}},
		{"not UTF-8", "{\"id\":\"\xff\"}", []forge.FieldError{f("", "body must be UTF-8")}},
		{"too large", `{"x":"` + strings.Repeat("a", 70<<10) + `"}`, []forge.FieldError{f("", "body too large")}},
		{"all required fields missing", `{}`, []forge.FieldError{
			f("eventType", "is required"), f("id", "is required"), f("context", "is required"),
		}},
		{"wrong types everywhere", `{"eventType":1,"id":true,"context":5,"app":"x","environment":[],"installerAccountId":{}}`, []forge.FieldError{
			f("eventType", "must be a string"), f("id", "must be a string"), f("context", "must be a site ARI or an object"),
			f("app", "must be an object"), f("environment", "must be an object"), f("installerAccountId", "must be a string"),
		}},
		{"unknown event type", `{"eventType":"avi:jira:created:issue","id":"i","context":"ari:cloud:jira::site/c"}`, []forge.FieldError{
			f("eventType", "unsupported event type"),
		}},
		{"empty strings", `{"eventType":"","id":"","context":""}`, []forge.FieldError{
			f("eventType", "is required"), f("id", "is required"),
			f("context", "must be a site ARI (ari:cloud:<product>::site/<cloudId>)"),
		}},
		{"context not a site", `{"eventType":"avi:forge:installed:app","id":"i","context":"ari:cloud:jira::project/1"}`, []forge.FieldError{
			f("context", "must be a site ARI (ari:cloud:<product>::site/<cloudId>)"),
		}},
		{"cloud id that is a path", `{"eventType":"avi:forge:installed:app","id":"i","context":"ari:cloud:jira::site/../../etc"}`, []forge.FieldError{
			f("context", "must be a site ARI (ari:cloud:<product>::site/<cloudId>)"),
		}},
		{"object context without cloudId", `{"eventType":"avi:forge:installed:app","id":"i","context":{}}`, []forge.FieldError{
			f("context.cloudId", "is required"),
		}},
		{"object context with a bad cloudId", `{"eventType":"avi:forge:installed:app","id":"i","context":{"cloudId":"a/b"}}`, []forge.FieldError{
			f("context.cloudId", "is not a valid cloud id"),
		}},
		{"ids with spaces and markup", `{"eventType":"avi:forge:installed:app","id":"a b","context":"ari:cloud:jira::site/c","app":{"id":"<x>"},"installerAccountId":"` + strings.Repeat("a", 300) + `"}`, []forge.FieldError{
			f("id", "is not a valid identifier"), f("app.id", "is not a valid identifier"), f("installerAccountId", "is not a valid identifier"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := forge.ParseLifecycleEvent([]byte(tt.body))
			var ve *forge.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, forge.ErrInvalidEvent) {
				t.Fatalf("error = %v (event %+v), want a *ValidationError", err, got)
			}
			if diff := cmp.Diff(tt.want, ve.Fields); diff != "" {
				t.Errorf("field errors mismatch (-want +got):\n%s", diff)
			}
			if strings.Contains(err.Error(), "aaaaaaaaaa") {
				t.Errorf("error echoes body text: %v", err)
			}
		})
	}
}
