package supportbridge

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// logCall finds slog calls and their message: log.Info("…"), log.WarnContext(ctx, "…"), …
var logCall = regexp.MustCompile(`\.(?:Debug|Info|Warn|Error)(?:Context)?\(\s*(?:ctx|c\.Request\.Context\(\)|context\.Background\(\)|r\.Context\(\))?,?\s*"([^"]*)"`)

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$`)

// TestLogMessagesAreSnakeCase keeps one convention for log messages across the code: an
// event name in snake_case, with everything else in attributes, so logs can be searched
// and counted by event.
func TestLogMessagesAreSnakeCase(t *testing.T) {
	var checked int
	for _, root := range []string{"cmd", "internal"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range logCall.FindAllStringSubmatch(string(b), -1) {
				checked++
				if !snakeCase.MatchString(m[1]) {
					t.Errorf("%s: log message %q is not a snake_case event name", path, m[1])
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 50 {
		t.Fatalf("found only %d log calls; the pattern no longer matches the code", checked)
	}
}
