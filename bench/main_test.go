package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStats(t *testing.T) {
	s := stats{3, 1, 2, 10}
	if s.median() != 2.5 || s.min() != 1 || s.max() != 10 || (stats{5, 1, 3}).median() != 3 {
		t.Errorf("median %v min %v max %v", s.median(), s.min(), s.max())
	}
	if got := fmtStats(stats{1.234, 1.1, 1.5}, "s"); got != "1.23 s (1.10–1.50)" {
		t.Errorf("fmtStats = %q", got)
	}
}

// TestPatternSum checks the expected checksum of the big-output case
// against the bytes `yes LINE | head -c N` writes.
func TestPatternSum(t *testing.T) {
	for _, n := range []int64{0, 1, 62, 63, 64, 1 << 20, 1<<20 + 7} {
		path := filepath.Join(t.TempDir(), "out")
		want := strings.Repeat(line+"\n", int(n/63)+1)[:n]
		os.WriteFile(path, []byte(want), 0o644)
		got, err := fileSum(path)
		if err != nil || got != patternSum(n) {
			t.Errorf("size %d: file %s, pattern %s", n, got, patternSum(n))
		}
	}
}

func TestReplaceGenerated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.md")
	os.WriteFile(path, []byte("# B\n"+beginMarker+"\nold\n"+endMarker+"\nprose\n"), 0o644)
	if err := replaceGenerated(path, "new\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if string(b) != "# B\n"+beginMarker+"\nnew\n"+endMarker+"\nprose\n" {
		t.Errorf("got %q", b)
	}
	os.WriteFile(path, []byte("no markers"), 0o644)
	if replaceGenerated(path, "x") == nil {
		t.Error("a file without markers was accepted")
	}
}
