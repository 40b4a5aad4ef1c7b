package kubernetes

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

// TestFollowerAfter: the re-read log is lined up with what the follow
// wrote: by position, or, when the node rotated the log (its start is
// gone), after the last bytes written or the end of them it begins with;
// a log that holds none of them is all new.
func TestFollowerAfter(t *testing.T) {
	var all strings.Builder
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&all, "line %d\n", i)
	}
	log := all.String()
	f := &follower{out: io.Discard}
	f.Write([]byte(log[:10000]))
	for _, c := range []struct {
		name, reread, want string
		ok                 bool
	}{
		{"whole", log, log[10000:], true},
		{"nothing new", log[:10000], "", true},
		{"rotated", log[5000:], log[10000:], true},
		{"rotated in the middle of the last bytes written", log[8000:], log[10000:], true},
		{"rotated past it", log[12000:], log[12000:], false},
	} {
		rest, ok := f.after([]byte(c.reread))
		if ok != c.ok || (ok && !bytes.Equal(rest, []byte(c.want))) {
			t.Errorf("%s: %d bytes, %v; want %d bytes, %v", c.name, len(rest), ok, len(c.want), c.ok)
		}
	}
	if empty := (&follower{out: io.Discard}); true {
		if rest, ok := empty.after([]byte("abc")); !ok || string(rest) != "abc" {
			t.Errorf("nothing written yet: %q, %v", rest, ok)
		}
	}
}
