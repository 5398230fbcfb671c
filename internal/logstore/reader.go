package logstore

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

const (
	// disorder is how far out of order concurrent writers put neighbouring lines. The
	// search for a window's start aims this much early, and reading a file goes on this
	// much past the window's end, so a line that is slightly out of place is still found.
	disorder = 2 * time.Second
	// probeSpan is how much one binary-search probe reads looking for a line with a time.
	// Probes that find none just narrow the range less, so it need only cover typical lines.
	probeSpan = 16 << 10
	// linearSpan is where the binary search stops and reading goes on line by line: below
	// it another probe costs about as much as reading the bytes.
	linearSpan = 256 << 10
)

// Record is one log record: a line with a time and the lines without one that follow it,
// such as a stack trace.
type Record struct {
	// Time is the record's time, from its first line, in UTC.
	Time time.Time
	// Text is the record's lines joined by "\n", without the final line break.
	Text string
	// Cut is set when a line or the record was longer than 1 MiB and was shortened.
	Cut bool
}

// Cursor reads the records of one stream inside a window, in file order, which is time
// order for logs written by one process. Call Next until it returns io.EOF, then Close.
// A file, once opened, stays bound to the context of the Next call that opened it (for S3
// it is one GET), so pass one request's context to every call.
type Cursor struct {
	src                  Source
	tenant, stream       string
	from, to             time.Time
	files                []File
	lr                   *lineReader
	body, gz             io.Closer
	pending              []byte // the first line of the next record, read ahead
	pendingTime          time.Time
	pendingCut, havePend bool
	text                 []byte
	texts                arena
	err                  error
}

// Open returns a cursor over the stream's records whose time is in [from, to). Only the
// files whose day meets the window are opened; in an uncompressed file the window's start
// is found by binary search, and each file is left as soon as its lines pass the window.
func (s *Store) Open(ctx context.Context, tenant, stream string, from, to time.Time) (*Cursor, error) {
	files, err := s.files(ctx, tenant, stream, from, to)
	if err != nil {
		return nil, err
	}
	return &Cursor{src: s.src, tenant: tenant, stream: stream, from: from, to: to, files: files}, nil
}

// Next returns the next record, or io.EOF after the last one.
func (c *Cursor) Next(ctx context.Context) (Record, error) {
	if c.err != nil {
		return Record{}, c.err
	}
	// Checked on every call, not only between files: a day on disk can take seconds to
	// read, and a client that went away should stop it.
	if err := ctx.Err(); err != nil {
		c.err = err
		c.closeFile()
		return Record{}, err
	}
	rec, err := c.next(ctx)
	if err != nil {
		c.err = err
		c.closeFile()
	}
	return rec, err
}

func (c *Cursor) next(ctx context.Context) (Record, error) {
	for {
		if c.lr == nil {
			if len(c.files) == 0 {
				return Record{}, io.EOF
			}
			f := c.files[0]
			c.files = c.files[1:]
			if err := c.openFile(ctx, f); err != nil {
				return Record{}, err
			}
		}
		rec, ok, err := c.record()
		if err != nil {
			return Record{}, err
		}
		if ok {
			return rec, nil
		}
		c.closeFile()
	}
}

// record assembles the next record of the window from the open file; ok is false when the
// file has none left.
func (c *Cursor) record() (rec Record, ok bool, err error) {
	for {
		if !c.havePend {
			if err := c.readTimed(); err != nil {
				if err == io.EOF {
					return Record{}, false, nil
				}
				return Record{}, false, err
			}
		}
		if !c.pendingTime.Before(c.to.Add(disorder)) {
			return Record{}, false, nil // past the window: the rest of the file is later still
		}
		// A record ends where the next line with a time starts, so that line is read
		// ahead and kept as pending for the next call.
		rec.Time, rec.Cut = c.pendingTime, c.pendingCut
		inWindow := !rec.Time.Before(c.from) && rec.Time.Before(c.to)
		c.text = append(c.text[:0], c.pending...)
		c.havePend = false
		full := false // the record reached maxRecord; further lines are skipped
		// Continuation lines belong to this record whether or not it is shown.
		for {
			line, cut, err := c.lr.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return Record{}, false, fmt.Errorf("read log file: %w", pathless(err))
			}
			if t, ok := lineTime(line); ok {
				c.setPending(line, t, cut)
				break
			}
			if !inWindow || full {
				continue
			}
			if len(c.text)+1+len(line) > maxRecord {
				if room := maxRecord - len(c.text) - 1; room > 0 {
					c.text = append(c.text, '\n')
					c.text = append(c.text, cutBack(line[:room])...)
				}
				c.text = append(c.text, recordCutMarker...)
				rec.Cut, full = true, true
				continue
			}
			c.text = append(c.text, '\n')
			c.text = append(c.text, line...)
			rec.Cut = rec.Cut || cut
		}
		if inWindow {
			rec.Text = c.texts.string(c.text)
			return rec, true, nil
		}
		rec = Record{}
	}
}

// readTimed reads up to the next line with a time. Lines without one before it belong to a
// record that started before the read position, outside the window.
func (c *Cursor) readTimed() error {
	for {
		line, cut, err := c.lr.next()
		if err != nil {
			if err != io.EOF {
				err = fmt.Errorf("read log file: %w", pathless(err))
			}
			return err
		}
		if t, ok := lineTime(line); ok {
			c.setPending(line, t, cut)
			return nil
		}
	}
}

func (c *Cursor) setPending(line []byte, t time.Time, cut bool) {
	c.pending = append(c.pending[:0], line...)
	c.pendingTime, c.pendingCut, c.havePend = t, cut, true
}

// openFile starts reading f at the first record that may be in the window.
func (c *Cursor) openFile(ctx context.Context, f File) error {
	c.havePend = false
	if f.Gzip {
		body, err := c.src.ReadRange(ctx, c.tenant, c.stream, f.Name, 0, -1)
		if err != nil {
			return fmt.Errorf("open log file: %w", err)
		}
		zr, err := gzip.NewReader(body)
		if err != nil {
			body.Close()
			return fmt.Errorf("open log file: %w", err)
		}
		c.body, c.gz = body, zr
		c.lr = newLineReader(zr, readBuf)
		return nil
	}
	// Aim early by the disorder allowance: a record just before from may be written after
	// one just past it, and the search assumes growing times.
	off, err := searchStart(ctx, c.src, c.tenant, c.stream, f, c.from.Add(-disorder))
	if err != nil {
		return err
	}
	start := max(off-1, 0) // from the byte before, so a line starting at off is kept whole
	body, err := c.src.ReadRange(ctx, c.tenant, c.stream, f.Name, start, -1)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	c.body = body
	c.lr = newLineReader(body, readBuf)
	if off > 0 {
		if _, _, err := c.lr.next(); err != nil && err != io.EOF {
			c.closeFile()
			return fmt.Errorf("read log file: %w", pathless(err))
		}
	}
	return nil
}

func (c *Cursor) closeFile() {
	if c.gz != nil {
		c.gz.Close()
		c.gz = nil
	}
	if c.body != nil {
		c.body.Close()
		c.body = nil
	}
	c.lr = nil
	c.havePend = false
}

// Close releases the file being read. Records already returned stay valid.
func (c *Cursor) Close() error {
	c.closeFile()
	if c.err == nil {
		c.err = errors.New("logstore: cursor closed")
	}
	return nil
}

// searchStart returns an offset at or before the start of the first line of f whose time is
// at or after from, and close to it, assuming times grow through the file. It probes the
// middle of the remaining range (reading a little from there, past the first line break, to
// the first line with a time) and halves the range until it is short enough to read.
func searchStart(ctx context.Context, src Source, tenant, stream string, f File, from time.Time) (int64, error) {
	lo, hi := int64(0), f.Size
	for hi-lo > linearSpan {
		mid := lo + (hi-lo)/2
		t, ok, err := probe(ctx, src, tenant, stream, f.Name, mid)
		if err != nil {
			return 0, err
		}
		if ok && t.Before(from) {
			lo = mid // the answer starts after the line found, which starts at or after mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// probe returns the time of the first line with one that starts at or after off and within
// probeSpan of it.
func probe(ctx context.Context, src Source, tenant, stream, name string, off int64) (time.Time, bool, error) {
	body, err := src.ReadRange(ctx, tenant, stream, name, off-1, probeSpan)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("search log file: %w", err)
	}
	defer func() {
		// Read to the end of the range before closing: an HTTP body closed early costs its
		// connection, and a new TLS connection per probe would dwarf the probe itself.
		io.Copy(io.Discard, body)
		body.Close()
	}()
	lr := newLineReader(body, probeSpan)
	first := true
	for {
		line, _, err := lr.next()
		if err == io.EOF {
			return time.Time{}, false, nil
		}
		if err != nil {
			return time.Time{}, false, fmt.Errorf("search log file: %w", pathless(err))
		}
		if first {
			first = false // the rest of the line the byte before off is on
			continue
		}
		if t, ok := lineTime(line); ok {
			return t, true, nil
		}
	}
}
