package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// tailSteps reads what Next returns as step names, failing the test on an
// error.
func tailSteps(t *testing.T, tail *Tail) string {
	t.Helper()
	res, err := tail.Next()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range res {
		names = append(names, r.Step)
	}
	return strings.Join(names, ",")
}

// TestTailReadsWhatIsAppended: each Next returns the results of the whole
// lines appended since the last, whatever the journal holds: a line not
// ended yet waits, garbage and lines over MaxLine are skipped (also when
// they end in a later call), a journal replaced by a shorter one is read
// from its start, and a FIFO in its place is neither read nor waited on.
func TestTailReadsWhatIsAppended(t *testing.T) {
	dir := t.TempDir()
	tail := NewTail(dir, "r1")
	if got := tailSteps(t, tail); got != "" {
		t.Errorf("no journal yet: %q", got)
	}
	j, err := Open(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, Path("r1"))
	appendRaw := func(s string) {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	j.Append(ok("a", "k"))
	j.Append(ok("b", "k"))
	for _, c := range []struct {
		write, want string
	}{
		{"", "a,b"},
		{"", ""},
		{`{"run_id":"r1","step":"c","stdout":"half`, ""}, // not ended
		{`"}` + "\n" + "garbage\n", "c"},
		// Over MaxLine, not ended: the rest of it, though it reads as a
		// result, is skipped with it, in a later call or in the same one.
		{`{"run_id":"r1","step":"long","stdout":"` + strings.Repeat("x", MaxLine), ""},
		{strings.Repeat("y", 100), ""},
		{`{"run_id":"r1","step":"evil"}` + "\n" + `{"run_id":"r1","step":"d"}` + "\n", "d"},
		{strings.Repeat("x", MaxLine+1), ""}, // the cap passed on the call's last byte
		{`{"run_id":"r1","step":"evil"}` + "\n" + `{"run_id":"r1","step":"d2"}` + "\n", "d2"},
		{strings.Repeat("x", MaxLine+1) + `{"run_id":"r1","step":"evil"}` + "\n" + `{"run_id":"r1","step":"e"}` + "\n", "e"},
		// A line ended in pieces, over several calls.
		{`{"run_id":"r1",`, ""},
		{`"step":"f"}`, ""},
		{"\n", "f"},
	} {
		appendRaw(c.write)
		if got := tailSteps(t, tail); got != c.want {
			t.Errorf("after %.40q: %q, want %q", c.write, got, c.want)
		}
	}
	j.Append(ok("g", "k"))
	j.Close()
	if got := tailSteps(t, tail); got != "g" {
		t.Errorf("after g: %q", got)
	}

	os.Remove(path) // replaced by a shorter journal
	os.WriteFile(path, []byte(`{"run_id":"r1","step":"y"}`+"\n"), 0o644)
	if got := tailSteps(t, tail); got != "y" {
		t.Errorf("replaced by a shorter journal: %q", got)
	}
	// Replaced by a longer one, with a line not ended (renamed over it, so
	// another file: one removed and made again may get the same inode, and
	// then reads as the same file grown).
	os.WriteFile(path+".new", []byte(`{"run_id":"r1","step":"y"}`+"\n"+`{"run_id":"r1","step":"z"}`+"\n"+`{"run_id"`), 0o644)
	os.Rename(path+".new", path)
	if got := tailSteps(t, tail); got != "y,z" {
		t.Errorf("replaced by a longer journal: %q", got)
	}

	os.Remove(path)
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := tailSteps(t, tail); got != "" {
		t.Errorf("a FIFO: %q", got)
	}
}

// BenchmarkFollow: what a poll of wflow logs -f costs on a journal of
// 20,000 results that one result was appended to, read whole (the
// baseline, as before Tail) and by Tail.
//
//	go test -run '^$' -bench Follow ./journal
func BenchmarkFollow(b *testing.B) {
	dir := b.TempDir()
	j, err := Open(dir, "r1")
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	for i := 0; i < 20_000; i++ {
		j.Append(ok(fmt.Sprintf("step-%d", i), "k"))
	}
	appendOne := func(b *testing.B) { // not timed: what a poll finds new
		b.StopTimer()
		j.Append(ok("new", "k"))
		b.StartTimer()
	}
	b.Run("baseline=Results", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			appendOne(b)
			if _, err := Results(dir, "r1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Tail", func(b *testing.B) {
		tail := NewTail(dir, "r1")
		if _, err := tail.Next(); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			appendOne(b)
			if res, err := tail.Next(); err != nil || len(res) != 1 {
				b.Fatal(res, err)
			}
		}
	})
}
