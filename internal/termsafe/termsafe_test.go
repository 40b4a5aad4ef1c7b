package termsafe

import (
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain text, tabs\tand ünïcödé ✓", "plain text, tabs\tand ünïcödé ✓"},
		{"\x1b]0;pwned\x07title", `\x1b]0;pwned\x07title`},   // OSC: window title
		{"\x1b]52;c;ZXZpbA==\x07", `\x1b]52;c;ZXZpbA==\x07`}, // OSC 52: clipboard
		{"\x1b[8mhidden\x1b[0m", "hidden"},                   // concealed text: style dropped
		{"\x1b[91mWARNING\x1b[0m: pip", "WARNING: pip"},      // colours dropped
		{"\x1b[1;38;5;196mred\x1b[m", "red"},                 // 256 colours, reset
		{"\x1b[2J\x1b[Hclear", `\x1b[2J\x1b[Hclear`},         // not SGR: escaped
		{"\x1b[", `\x1b[`},                         // cut short
		{"over\rwrite", `over\x0dwrite`},           // carriage return
		{"\u009b31m", `\u009b31m`},                 // C1 CSI
		{"abc\u202eevil", `abc\u202eevil`},         // right-to-left override
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`}, // not UTF-8
		{"del\x7f nul\x00", `del\x7f nul\x00`},
		{"", ""},
	}
	for _, c := range cases {
		if got := Escape(c.in); got != c.want {
			t.Errorf("Escape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzEscape: whatever comes in, what comes out is valid UTF-8 with
// nothing a terminal acts on.
func FuzzEscape(f *testing.F) {
	f.Add("\x1b[2J\x1b]0;x\x07\u202e\xff")
	f.Fuzz(func(t *testing.T, s string) {
		out := Escape(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Escape(%q) = %q is not UTF-8", s, out)
		}
		for _, r := range out {
			if unsafe(r, utf8.RuneLen(r)) {
				t.Fatalf("Escape(%q) kept %U", s, r)
			}
		}
	})
}
