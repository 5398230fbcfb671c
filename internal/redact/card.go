package redact

// Payment card numbers are 13 to 19 digits, written contiguously or in groups separated by
// single spaces or dashes. Logs are full of long numbers (epoch milliseconds, ids), so a
// candidate must also start like a card (an issuer prefix) and pass the Luhn check. Every
// timestamp survives (they start with 1 or 20); of random ids that do start like a card, one
// in ten passes Luhn and is redacted, which is the price of catching real cards.

// findCards looks for chains of digit groups with at least 13 digits. Such a chain covers
// 13 consecutive bytes or more, so looking at every 13th byte is enough to land in each one;
// from there it walks back to the chain's start. Most of a log is skipped unread.
func (s *Scrubber) findCards(in string) {
	const stride = 13
	done := 0 // chains before done have been examined
	for i := stride - 1; i < len(in); {
		if !isDigit(in[i]) {
			if (in[i] != ' ' && in[i] != '-') || i+1 >= len(in) || !isDigit(in[i+1]) {
				i += stride
				continue
			}
			i++
		}
		// A chain of 13 bytes or more through i reaches i-6 or i+6: an isolated short run
		// (the digits of a hex id) is rejected with two reads.
		if !isChainByte(in, i-6) && !isChainByte(in, i+6) {
			i += stride
			continue
		}
		st := i
		for st > done {
			if isDigit(in[st-1]) {
				st--
			} else if st-2 >= done && (in[st-1] == ' ' || in[st-1] == '-') && isDigit(in[st-2]) {
				st -= 2
			} else {
				break
			}
		}
		done = s.cards(in, st)
		i = max(done, i) + stride - 1
	}
}

// isChainByte reports whether in[k] exists and may belong to a chain of digit groups.
func isChainByte(in string, k int) bool {
	return k >= 0 && k < len(in) && (isDigit(in[k]) || in[k] == ' ' || in[k] == '-')
}

// group is one run of digits in a chain.
type group struct{ start, end int }

// cards examines the chain of digit groups starting at i and returns its end.
func (s *Scrubber) cards(in string, i int) int {
	// First only count: nearly every chain in a log (a time, a date, a status code, an id)
	// has fewer than 13 digits, and those need no bookkeeping.
	k, total, n := i, 0, 0
	for {
		st := k
		for k < len(in) && isDigit(in[k]) {
			k++
		}
		total += k - st
		n++
		if n < 24 && k+1 < len(in) && (in[k] == ' ' || in[k] == '-') && isDigit(in[k+1]) {
			k++
			continue
		}
		break
	}
	if total < 13 {
		return k
	}
	var gs [24]group
	var seps [24]byte // seps[g] separates gs[g] and gs[g+1]
	n = 0
	k = i
	for {
		st := k
		for k < len(in) && isDigit(in[k]) {
			k++
		}
		gs[n] = group{st, k}
		n++
		if n < len(gs) && k+1 < len(in) && (in[k] == ' ' || in[k] == '-') && isDigit(in[k+1]) {
			seps[n-1] = in[k]
			k++
			continue
		}
		break
	}
	startClean := !digitsGlued(in, i)
	endClean := !digitsGluedAfter(in, k)
	for a := 0; a < n; a++ {
		// A window may start or end inside a chain only at a space: dash-joined groups
		// (a UUID, a phone number) are one identifier, never a card plus something.
		if a == 0 && !startClean || a > 0 && seps[a-1] != ' ' {
			continue
		}
		d := 0
		for b := a; b < n; b++ {
			d += gs[b].end - gs[b].start
			if d > 19 || b > a && seps[b-1] != seps[a] {
				break
			}
			if d < 13 {
				continue
			}
			if b == n-1 && !endClean || b < n-1 && seps[b] != ' ' {
				continue
			}
			if !cardGrouping(gs[a:b+1]) || !isCardNumber(digitsOf(in, gs[a].start, gs[b].end)) {
				continue
			}
			s.add(gs[a].start, gs[b].end, kindCardNumber)
			a = b
			break
		}
	}
	return k
}

// digitsGlued reports whether the digits at i continue a word, a decimal or a signed number
// ("id4111…", "0.4111…", "+4411…", "order-4111…"), which a card number never does.
func digitsGlued(in string, i int) bool {
	if i == 0 {
		return false
	}
	switch c := in[i-1]; {
	case isAlnum(c), c == '_', c == '.', c == '+':
		return true
	case c == '-':
		return i >= 2 && isAlnum(in[i-2])
	}
	return false
}

// digitsGluedAfter is digitsGlued for the byte at e, just after a chain.
func digitsGluedAfter(in string, e int) bool {
	if e >= len(in) {
		return false
	}
	switch c := in[e]; {
	case isAlnum(c), c == '_':
		return true
	case c == '.' || c == '-':
		return e+1 < len(in) && isAlnum(in[e+1])
	}
	return false
}

// cardGrouping accepts the ways cards are printed: contiguous, in fours (4-4-4-4, 4-4-4-4-3),
// or as American Express and Diners Club print them (4-6-5, 4-6-4).
func cardGrouping(gs []group) bool {
	if len(gs) == 1 {
		return true
	}
	size := func(g group) int { return g.end - g.start }
	if len(gs) == 3 && size(gs[0]) == 4 && size(gs[1]) == 6 && (size(gs[2]) == 5 || size(gs[2]) == 4) {
		return true
	}
	for _, g := range gs[:len(gs)-1] {
		if size(g) != 4 {
			return false
		}
	}
	return size(gs[len(gs)-1]) <= 4
}

// digitsOf collects the digits of in[a:b] into a small array, skipping separators.
func digitsOf(in string, a, b int) string {
	var buf [19]byte
	n := 0
	for k := a; k < b && n < len(buf); k++ {
		if isDigit(in[k]) {
			buf[n] = in[k]
			n++
		}
	}
	return string(buf[:n])
}

// isCardNumber reports whether digits (nothing else) are a plausible card number: 13–19
// digits, an issuer prefix in use (Mastercard's 2221–2720, Amex, Diners, JCB, Visa,
// Mastercard, Maestro, Discover, UnionPay) and a valid Luhn check digit.
func isCardNumber(digits string) bool {
	n := len(digits)
	if n < 13 || n > 19 {
		return false
	}
	for i := range n {
		if !isDigit(digits[i]) {
			return false
		}
	}
	switch d := digits[0]; d {
	case '4', '5', '6':
	case '3':
		if c := digits[1]; c != '0' && (c < '4' || c > '8') {
			return false
		}
	case '2':
		if p := digits[:4]; p < "2221" || p > "2720" {
			return false
		}
	default:
		return false
	}
	return luhn(digits)
}

// luhn is the ISO/IEC 7812 check: every second digit from the right is doubled.
func luhn(digits string) bool {
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}
