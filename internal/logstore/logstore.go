// Package logstore reads the app's log files, laid out as <tenant>/<stream>/<YYYY-MM-DD>.log
// or .log.gz, from a directory (SB_LOG_DIR) or an S3-compatible bucket. It lists a tenant's
// streams, which access requests name, sizes what a request would expose (the customer's
// preview), and reads the records of one stream inside a time window for the gated log
// route, which passes every line through a Redactor before it leaves the service.
//
// Names come from requests, so every tenant and stream name is checked before it reaches a
// path or an object key, and the filesystem source opens files through os.Root, which
// refuses ".." and symlinks that lead out of the store whatever slipped past the check.
package logstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

var (
	// ErrBadName means a tenant or stream name could escape the store's root.
	ErrBadName = errors.New("logstore: name not allowed")
	// ErrNotFound means the tenant has no such stream.
	ErrNotFound = errors.New("logstore: stream not found")
)

// maxNameLen bounds tenant and stream names: a Connect clientKey or a cloud id is far
// shorter, and file systems reject components past 255 bytes anyway.
const maxNameLen = 200

// validName accepts the names the store itself creates: no separators, no dot files (so no
// "." or ".."), no control bytes, and no '%', because an S3 server or a proxy in front of it
// may decode "%2F" into a separator after we checked. Bounded length.
func validName(s string) bool {
	if s == "" || len(s) > maxNameLen || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c == 0x7f, c == '/', c == '\\', c == '%':
			return false
		}
	}
	return true
}

// File is one day of one stream.
type File struct {
	// Name is the file's name in its stream folder, such as "2026-12-04.log.gz".
	Name string
	// Day is the UTC midnight that starts the day the file covers.
	Day time.Time
	// Size is the stored size in bytes (compressed for .gz).
	Size int64
	// Gzip is set for .log.gz files, which can only be read from the start.
	Gzip bool
}

// overlaps reports whether the file's day meets the window [from, to).
func (f File) overlaps(from, to time.Time) bool {
	return f.Day.Before(to) && f.Day.Add(24*time.Hour).After(from)
}

// parseFileName recognises "<YYYY-MM-DD>.log" and "<YYYY-MM-DD>.log.gz"; anything else in a
// stream folder (a lock file, a half-written temp file) is not a log.
func parseFileName(name string) (File, bool) {
	day, ext, ok := strings.Cut(name, ".")
	if !ok || (ext != "log" && ext != "log.gz") || len(day) != len("2006-01-02") {
		return File{}, false
	}
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return File{}, false
	}
	return File{Name: name, Day: d, Gzip: ext == "log.gz"}, true
}

// dayFiles sorts a stream's files by day and keeps one file per day. While a day is being
// compressed both forms exist for a moment; the plain one is complete (the .gz may still be
// growing) and can be searched, so it wins.
func dayFiles(fs []File) []File {
	slices.SortFunc(fs, func(a, b File) int {
		if c := a.Day.Compare(b.Day); c != 0 {
			return c
		}
		return boolCmp(a.Gzip, b.Gzip)
	})
	return slices.CompactFunc(fs, func(a, b File) bool { return a.Day.Equal(b.Day) })
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// Source is where log files are kept: a directory (Dir) or a bucket (Bucket). Both use the
// same layout and check names themselves.
type Source interface {
	// Streams lists the tenant's streams, sorted. A tenant without logs has none.
	Streams(ctx context.Context, tenant string) ([]string, error)
	// Files lists the stream's log files in any order; ErrNotFound if the stream is unknown.
	Files(ctx context.Context, tenant, stream string) ([]File, error)
	// ReadRange returns n bytes of the file starting at off, or everything from off when
	// n < 0. Reading fewer bytes than asked (at the end of the file) is not an error.
	ReadRange(ctx context.Context, tenant, stream, name string, off, n int64) (io.ReadCloser, error)
}

// Store reads logs from a Source. It holds no state of its own, so one Store serves every
// request at once; each Cursor belongs to one request.
type Store struct {
	src Source
}

// New returns a Store reading from src.
func New(src Source) *Store { return &Store{src: src} }

// Streams lists the tenant's streams, sorted.
func (s *Store) Streams(ctx context.Context, tenant string) ([]string, error) {
	return s.src.Streams(ctx, tenant)
}

// Scope is what a request would expose: the files whose day meets its window and their
// stored size, shown to the customer before they decide.
type Scope struct {
	// Files is the number of day files that meet the window.
	Files int
	// Bytes is their stored size, compressed where they are; a window covering part of a
	// day still counts the whole file, which is what the grant lets the reader open.
	Bytes int64
}

// Scope sizes the files of the named streams that overlap [from, to). A stream the tenant
// does not have counts as empty: the request may name a stream that starts logging later.
func (s *Store) Scope(ctx context.Context, tenant string, streams []string, from, to time.Time) (Scope, error) {
	var sc Scope
	for _, st := range streams {
		fs, err := s.files(ctx, tenant, st, from, to)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return Scope{}, err
		}
		for _, f := range fs {
			sc.Files++
			sc.Bytes += f.Size
		}
	}
	return sc, nil
}

// files returns the stream's files that overlap [from, to), in day order.
func (s *Store) files(ctx context.Context, tenant, stream string, from, to time.Time) ([]File, error) {
	if !validName(tenant) || !validName(stream) {
		return nil, ErrBadName
	}
	all, err := s.src.Files(ctx, tenant, stream)
	if err != nil {
		return nil, fmt.Errorf("list log files: %w", err)
	}
	all = slices.DeleteFunc(all, func(f File) bool { return !f.overlaps(from, to) })
	return dayFiles(all), nil
}
