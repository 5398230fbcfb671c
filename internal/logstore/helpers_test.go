package logstore

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// source is one Source under test with a way to put files into it.
type source struct {
	name string
	src  Source
	// put stores data under key, a slash-separated path below the store's root.
	put func(t *testing.T, key string, data []byte)
	// conns counts the connections the S3 server accepted; nil for the directory.
	conns *atomic.Int64
}

// eachSource runs fn against a fresh filesystem store and a fresh bucket store, so that both
// sources pass one suite.
func eachSource(t *testing.T, fn func(t *testing.T, s source)) {
	t.Helper()
	t.Run("dir", func(t *testing.T) { fn(t, newDirSource(t)) })
	t.Run("s3", func(t *testing.T) { fn(t, newBucketSource(t)) })
}

func newDirSource(t *testing.T) source {
	t.Helper()
	root := t.TempDir()
	return source{
		name: "dir",
		src:  Dir{Root: root},
		put: func(t *testing.T, key string, data []byte) {
			t.Helper()
			p := filepath.Join(root, filepath.FromSlash(key))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// newBucketSource starts an in-process S3 server over real HTTP and builds the store the way
// production does, through the default AWS configuration chain, pointed at it.
func newBucketSource(t *testing.T) source {
	t.Helper()
	srv := httptest.NewUnstartedServer(gofakes3.New(s3mem.New()).Server())
	// The fake complains when a reader hangs up mid-object, which the cursor does on purpose
	// once it has passed the window.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", "test-access-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret-key")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx := context.Background()
	b, err := NewBucket(ctx, "logs", "/prod/logs/", WithEndpoint(srv.URL), WithPathStyle())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("logs")}); err != nil {
		t.Fatal(err)
	}
	return source{
		name:  "s3",
		src:   b,
		conns: &conns,
		put: func(t *testing.T, key string, data []byte) {
			t.Helper()
			_, err := b.client.PutObject(context.Background(), &s3.PutObjectInput{
				Bucket: aws.String("logs"),
				Key:    aws.String("prod/logs/" + key),
				Body:   bytes.NewReader(data),
			})
			if err != nil {
				t.Fatal(err)
			}
		},
	}
}

// gz compresses data.
func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// readAll reads every record of the window.
func readAll(t testing.TB, st *Store, tenant, stream string, from, to time.Time) []Record {
	t.Helper()
	ctx := context.Background()
	c, err := st.Open(ctx, tenant, stream, from, to)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer c.Close()
	var out []Record
	for {
		r, err := c.Next(ctx)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, r)
	}
}

// ts parses an RFC 3339 time for a test table.
func ts(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v.UTC()
}

// lines joins lines with a final newline, as a log file has.
func lines(ls ...string) []byte { return []byte(strings.Join(ls, "\n") + "\n") }
