// Package termsafe makes text from untrusted sources (steps, the module,
// policies) safe to print on a terminal: control characters and escape
// sequences are shown escaped instead of acted on, so a step cannot set the
// window title, write the clipboard (OSC 52), move the cursor or hide text
// before wflow's own lines. Files keep the exact bytes; only what reaches
// the text console goes through here.
package termsafe

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Escape returns s with every byte or rune a terminal would act on instead
// of print written as a Go-style escape: C0 controls but tab (\x1b), DEL,
// C1 controls (\u009b), the bidirectional overrides and isolates that can
// reorder what is shown (\u202e), and bytes that are not UTF-8 (\xff).
// Colour and style sequences (SGR: ESC [ digits;... m), which tools such as
// pip and pytest print, are dropped instead: shown escaped they bury the
// text, and kept they could conceal it (ESC [8m).
func Escape(s string) string {
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if unsafe(r, size) {
			break
		}
		i += size
	}
	if i == len(s) {
		return s // the common case: nothing to escape, no copy
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		if n := sgrLen(s[i:]); n > 0 {
			i += n
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && unsafe(r, size):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafe(r, size):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// sgrLen returns the length of the SGR sequence s starts with (ESC [, then
// digits, ';' or ':', then 'm'), or 0.
func sgrLen(s string) int {
	if len(s) < 3 || s[0] != 0x1b || s[1] != '[' {
		return 0
	}
	for i := 2; i < len(s) && i < 64; i++ {
		switch c := s[i]; {
		case c == 'm':
			return i + 1
		case c >= '0' && c <= '9', c == ';', c == ':':
		default:
			return 0
		}
	}
	return 0
}

// unsafe reports whether a decoded rune must be escaped.
func unsafe(r rune, size int) bool {
	switch {
	case r == utf8.RuneError && size == 1:
		return true
	case r == '\t':
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
