package logstore_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/supportbridge/supportbridge/internal/logstore"
	"github.com/supportbridge/supportbridge/internal/secret"
)

// The gated log route reads a grant's window and redacts every record before it is sent.
func ExampleStore_Open() {
	root, err := os.MkdirTemp("", "logstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	os.MkdirAll(filepath.Join(root, "tenant-1", "app"), 0o755)
	os.WriteFile(filepath.Join(root, "tenant-1", "app", "2026-12-04.log"), []byte(
		"2026-12-04T09:59:59Z INFO too early\n"+
			"2026-12-04T10:00:00Z ERROR login failed for bob@acme.example\n"+
			"\tat auth.go:42\n"+
			`{"time":"2026-12-04T10:30:00Z","msg":"retry","name":"Bob"}`+"\n"+
			"2026-12-04T11:00:00Z INFO too late\n"), 0o644)

	ctx := context.Background()
	store := logstore.New(logstore.Dir{Root: root})
	red, err := logstore.NewRedactor(logstore.RedactorOptions{
		GrantKey:     secret.New("key-of-grant-0001-0123456789abcdef"),
		SharedSecret: secret.New("tenant-shared-secret-value"),
	})
	if err != nil {
		log.Fatal(err)
	}
	from := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	cur, err := store.Open(ctx, "tenant-1", "app", from, from.Add(time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	defer cur.Close()
	for {
		rec, err := cur.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(red.String(rec.Text))
	}
	fmt.Println(red.Counts())
	// Output:
	// 2026-12-04T10:00:00Z ERROR login failed for [email:b8002b8d]
	// 	at auth.go:42
	// {"time":"2026-12-04T10:30:00Z","msg":"retry","name":"[name:bd1b26a5]"}
	// map[email:1 name:1]
}
