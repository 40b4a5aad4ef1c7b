package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readInput reads a file whole up to its cap, refuses one byte more, and
// ends on a device that never ends instead of growing without bound.
func TestReadInputCapsWhatItReads(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, 511, 512, 513, 4096, 4097} {
		p := filepath.Join(dir, "f")
		want := bytes.Repeat([]byte{'x'}, size)
		if err := os.WriteFile(p, want, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := readInput(p, 4096)
		switch {
		case size > 4096:
			if err == nil || !strings.Contains(err.Error(), "over") {
				t.Errorf("size %d: err = %v, want a refusal", size, err)
			}
		case err != nil:
			t.Errorf("size %d: %v", size, err)
		case !bytes.Equal(got, want):
			t.Errorf("size %d: read %d bytes", size, len(got))
		}
	}
	if _, err := readInput("/dev/zero", 1<<20); err == nil || !strings.Contains(err.Error(), "over 1 MiB") {
		t.Errorf("/dev/zero: err = %v, want over 1 MiB", err)
	}
}
