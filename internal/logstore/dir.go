package logstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
)

// Dir is a log store on the filesystem, rooted at Root. Every open goes through os.Root, so
// neither ".." nor a symlink can reach a file outside Root, even if a name check were
// wrong. An empty Root is a store without logs.
type Dir struct{ Root string }

// NewDir returns the store rooted at root.
func NewDir(root string) Dir { return Dir{Root: root} }

// Streams lists the tenant's streams (its folders), sorted. A tenant without logs has none.
func (d Dir) Streams(ctx context.Context, tenant string) ([]string, error) {
	if !validName(tenant) {
		return nil, ErrBadName
	}
	if d.Root == "" {
		return nil, nil
	}
	entries, err := d.readDir(tenant)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && validName(e.Name()) {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}

// Files lists the stream's log files.
func (d Dir) Files(ctx context.Context, tenant, stream string) ([]File, error) {
	if !validName(tenant) || !validName(stream) {
		return nil, ErrBadName
	}
	if d.Root == "" {
		return nil, ErrNotFound
	}
	entries, err := d.readDir(path.Join(tenant, stream))
	if err != nil {
		return nil, err
	}
	var out []File
	for _, e := range entries {
		// Only regular files: a symlinked day file is skipped here, and os.Root would refuse
		// it later if it pointed out of the store.
		f, ok := parseFileName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed since the listing (retention)
		}
		f.Size = info.Size()
		out = append(out, f)
	}
	return out, nil
}

// ReadRange opens the file and positions it at off.
func (d Dir) ReadRange(ctx context.Context, tenant, stream, name string, off, n int64) (io.ReadCloser, error) {
	if !validName(tenant) || !validName(stream) || !validName(name) {
		return nil, ErrBadName
	}
	if d.Root == "" {
		return nil, ErrNotFound
	}
	// The root is opened per call rather than kept: Dir stays a plain value that needs no
	// Close and can be copied, and an open costs microseconds next to the reading.
	root, err := d.openRoot()
	if err != nil {
		return nil, err
	}
	defer root.Close() // an open file outlives its Root
	name = path.Join(tenant, stream, name)
	f, err := root.Open(name)
	if err != nil {
		return nil, classify(root, name, err)
	}
	if off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("seek log file: %w", pathless(err))
		}
	}
	if n < 0 {
		return f, nil
	}
	return limitedFile{io.LimitReader(f, n), f}, nil
}

type limitedFile struct {
	io.Reader
	io.Closer
}

// openRoot opens the store. A store folder that does not exist (yet) holds no logs, as
// an empty one does: the app may not have written any.
func (d Dir) openRoot() (*os.Root, error) {
	root, err := os.OpenRoot(d.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("open log store: %w", pathless(err))
	}
	return root, nil
}

// readDir lists a folder under the root.
func (d Dir) readDir(name string) ([]fs.DirEntry, error) {
	root, err := d.openRoot()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		return nil, classify(root, name, err)
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("read folder: %w", pathless(err))
	}
	return entries, nil
}

// classify turns an open error into the package's errors. os.Root reports a symlink that
// leads out of the root with an unexported error, so the path is examined instead: a
// symlink on it that could not be followed is an escape attempt.
func classify(root *os.Root, name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	for p := name; p != "." && p != "/"; p = path.Dir(p) {
		if fi, lerr := root.Lstat(p); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%w: symlink out of the store", ErrBadName)
		}
	}
	return fmt.Errorf("open: %w", pathless(err))
}

// pathless drops the file path from an error: error text may reach a client, and the
// store's layout on disk is none of its business.
func pathless(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
