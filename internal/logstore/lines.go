package logstore

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"time"
	"unicode/utf8"
)

const (
	// maxLine is the longest line or record handed out; past it the rest is skipped unread
	// into memory, so a runaway line (a base64 blob, a file without newlines) costs a
	// bounded buffer, never the whole line.
	maxLine = 1 << 20
	// lineCutMarker ends a line that was longer than maxLine.
	lineCutMarker = " …[line cut at 1 MiB]"
	// maxRecord bounds a record with its continuation lines, so that a file without times
	// cannot grow one record without bound either.
	maxRecord = 4 << 20
	// recordCutMarker ends a record whose continuation lines ran past maxRecord.
	recordCutMarker = " …[record cut at 4 MiB]"
	// cutBackoff is how far a cut moves back to a blank: a token or a shared secret that
	// straddles the cut must not leave its first half behind for the redactor to miss.
	cutBackoff = 4 << 10
	// readBuf is the reader's buffer; lines longer than it are assembled in lineReader.long.
	readBuf = 64 << 10
)

// lineReader splits a stream into lines without their line ending.
type lineReader struct {
	br   *bufio.Reader
	long []byte
}

func newLineReader(r io.Reader, size int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, size)}
}

// next returns the next line, valid until the following call, and whether it was cut.
func (lr *lineReader) next() (line []byte, cut bool, err error) {
	// ReadSlice hands out the reader's own buffer: a line that fits, which is nearly every
	// line, is never copied.
	b, err := lr.br.ReadSlice('\n')
	switch {
	case err == nil:
		return trimEOL(b), false, nil
	case err == io.EOF && len(b) > 0:
		return trimEOL(b), false, nil // a last line without its newline
	case !errors.Is(err, bufio.ErrBufferFull):
		return nil, false, err
	}
	if lr.long == nil {
		// Sized once for the longest line, so that assembling one never regrows it.
		lr.long = make([]byte, 0, maxLine+1+lr.br.Size())
	}
	lr.long = append(lr.long[:0], b...)
	for {
		b, err = lr.br.ReadSlice('\n')
		// Keep one byte past maxLine so that a line of exactly maxLine bytes is not cut.
		room := maxLine + 1 - len(lr.long)
		if len(b) > room {
			lr.long = append(lr.long, b[:room]...)
			cut = true
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = lr.br.ReadSlice('\n')
			}
		} else {
			lr.long = append(lr.long, b...)
		}
		if err == nil || err == io.EOF {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, false, err
		}
	}
	line = trimEOL(lr.long)
	if len(line) > maxLine || cut {
		line = append(cutBack(line[:min(len(line), maxLine)]), lineCutMarker...)
		cut = true
	}
	return line, cut, nil
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte{'\n'})
	return bytes.TrimSuffix(b, []byte{'\r'})
}

// cutBack shortens a cut line to just before its last blank in the final cutBackoff bytes,
// or by cutBackoff when there is none, so that no value is left half-shown; it also never
// ends inside a UTF-8 sequence.
func cutBack(b []byte) []byte {
	lo := max(0, len(b)-cutBackoff)
	if i := bytes.LastIndexAny(b[lo:], " \t"); i >= 0 {
		return b[:lo+i]
	}
	b = b[:lo]
	for len(b) > 0 && !utf8.RuneStart(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	if len(b) > 0 && b[len(b)-1] >= utf8.RuneSelf {
		b = b[:len(b)-1] // a lead byte whose continuation was cut
	}
	return b
}

// lineTime returns the time a line starts a record with: the "time", "timestamp", "ts" or
// "@timestamp" field of a JSON line, or the RFC 3339 time a text line starts with. A line
// without one continues the record before it.
func lineTime(b []byte) (time.Time, bool) {
	if len(b) > 0 && b[0] == '{' {
		return jsonTime(b)
	}
	t, _, ok := parseRFC3339(b)
	return t, ok
}

// jsonTime looks for the first time key followed by a colon: a key, not a value that
// happens to read "time". It does not parse the JSON, which would cost more than the rest of
// reading; a nested "time" key before the top-level one is taken, which logs do not do.
func jsonTime(b []byte) (time.Time, bool) {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return time.Time{}, false
		}
		q := i + j + 1
		i = q
		if q >= len(b) || (b[q] != 't' && b[q] != '@') {
			continue
		}
		var n int
		switch {
		case bytes.HasPrefix(b[q:], []byte(`time"`)):
			n = 5
		case bytes.HasPrefix(b[q:], []byte(`timestamp"`)):
			n = 10
		case bytes.HasPrefix(b[q:], []byte(`ts"`)):
			n = 3
		case bytes.HasPrefix(b[q:], []byte(`@timestamp"`)):
			n = 11
		default:
			continue
		}
		v := skipBlanks(b, q+n)
		if v >= len(b) || b[v] != ':' {
			continue
		}
		v = skipBlanks(b, v+1)
		if v >= len(b) {
			return time.Time{}, false
		}
		if b[v] == '"' {
			if t, n, ok := parseRFC3339(b[v+1:]); ok && v+1+n < len(b) && b[v+1+n] == '"' {
				return t, true
			}
			continue
		}
		if t, ok := epochTime(b[v:]); ok {
			return t, true
		}
	}
}

func skipBlanks(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

// epochTime reads a JSON number of seconds, milliseconds, microseconds or nanoseconds since
// 1970, told apart by its digit count, as loggers that write "ts": 1733300000123 do.
func epochTime(b []byte) (time.Time, bool) {
	var v int64
	n := 0
	for n < len(b) && n < 19 && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + int64(b[n]-'0')
		n++
	}
	if n < len(b) && (b[n] >= '0' && b[n] <= '9' || b[n] == '.' || b[n] == 'e' || b[n] == 'E') {
		return time.Time{}, false // fractional seconds and exponents are not worth guessing
	}
	switch n {
	case 10:
		return time.Unix(v, 0).UTC(), true
	case 13:
		return time.UnixMilli(v).UTC(), true
	case 16:
		return time.UnixMicro(v).UTC(), true
	case 19:
		return time.Unix(0, v).UTC(), true
	}
	return time.Time{}, false
}

// parseRFC3339 parses the RFC 3339 time b starts with ("2026-12-04T15:01:06.123Z", a space
// instead of the T, any number of fraction digits, Z or a ±hh:mm offset) and returns its
// length. It is hand-written because time.Parse allocates on failure, and most lines of a
// stack trace are failures.
func parseRFC3339(b []byte) (t time.Time, n int, ok bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, 0, false
	}
	if c := b[10]; c != 'T' && c != 't' && c != ' ' {
		return time.Time{}, 0, false
	}
	num := func(i, w int) int {
		v := 0
		for _, c := range b[i : i+w] {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, minute, sec := num(11, 2), num(14, 2), num(17, 2)
	if year < 0 || month < 1 || month > 12 || day < 1 || day > 31 ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 60 {
		return time.Time{}, 0, false
	}
	if sec == 60 {
		sec = 59 // a leap second sorts with the second before it
	}
	i, nsec := 19, 0
	if b[i] == '.' || b[i] == ',' {
		i++
		digits := 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if digits < 9 {
				nsec = nsec*10 + int(b[i]-'0')
				digits++
			}
		}
		if digits == 0 {
			return time.Time{}, 0, false
		}
		for ; digits < 9; digits++ {
			nsec *= 10
		}
	}
	if i >= len(b) {
		return time.Time{}, 0, false
	}
	offset := 0
	switch b[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if i+6 > len(b) || b[i+3] != ':' {
			return time.Time{}, 0, false
		}
		oh, om := num(i+1, 2), num(i+4, 2)
		if oh < 0 || oh > 23 || om < 0 || om > 59 {
			return time.Time{}, 0, false
		}
		offset = oh*3600 + om*60
		if b[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return time.Time{}, 0, false
	}
	if day > daysIn(month, year) {
		return time.Time{}, 0, false
	}
	// Times are compared as instants, so a line's offset is folded into a UTC time. The
	// same instant as time.Date would give, without its normalising, which was a tenth of
	// reading a file.
	unix := daysSinceEpoch(year, month, day)*86400 + int64(hour*3600+minute*60+sec-offset)
	return time.Unix(unix, int64(nsec)).UTC(), i, true
}

// daysSinceEpoch returns the number of days from 1970-01-01 to a valid date of the
// proleptic Gregorian calendar, counting in eras of 400 years that start on 1 March, so
// that a leap day is the last day of its year (H. Hinnant's days_from_civil).
func daysSinceEpoch(year, month, day int) int64 {
	if month <= 2 {
		year--
	}
	era := year
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := year - era*400                          // [0, 399]
	doy := (153*((month+9)%12)+2)/5 + day - 1      // [0, 365], from 1 March
	doe := yoe*365 + yoe/4 - yoe/100 + doy         // [0, 146096]
	return int64(era)*146097 + int64(doe) - 719468 // 719468: days from 0000-03-01 to 1970-01-01
}

func daysIn(m, year int) int {
	switch m {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
