// Package clip shortens text for messages: one rule for every message
// wflow writes that quotes what it was given (a name, a path, a key, a
// line of output), so none of them grows with hostile input.
package clip

import "unicode/utf8"

// String returns s when it is at most n bytes, else its first n bytes (cut
// back to a whole UTF-8 character) and "...".
func String(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// Tail returns s when it is at most n bytes, else its last n bytes, from
// the first whole UTF-8 character on (the end of a stream is what a reader
// wants of it).
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := len(s) - max(n, 0)
	for end := min(cut+utf8.UTFMax, len(s)); cut < end && !utf8.RuneStart(s[cut]); cut++ {
	}
	return s[cut:]
}
