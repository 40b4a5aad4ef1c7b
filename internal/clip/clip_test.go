package clip

import (
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"longer text", 6, "longer..."},
		{"héllo", 2, "h..."}, // é is two bytes: not cut in half
		{"🎉🎉", 5, "🎉..."},
		{"x", 0, "..."},
	} {
		got := String(c.in, c.n)
		if got != c.want || !utf8.ValidString(got) {
			t.Errorf("String(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func TestTail(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"0123456789", 4, "6789"},
		{"aé", 1, ""}, // the last byte is half of é
		{"xé", 2, "é"},
		{"🎉b", 2, "b"},
	} {
		if got := Tail(c.in, c.n); got != c.want || !utf8.ValidString(got) {
			t.Errorf("Tail(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
