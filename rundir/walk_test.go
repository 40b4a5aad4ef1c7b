package rundir

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// walkAll walks rel of dir and returns one line per entry: its path, its
// kind and, for a file, its content.
func walkAll(t *testing.T, dir, rel string, lim WalkLimits) ([]string, error) {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var got []string
	err = Walk(root, rel, lim, func(e Entry, f *os.File) error {
		switch {
		case f != nil:
			b, err := io.ReadAll(f)
			if err != nil {
				return err
			}
			got = append(got, e.Path+" file "+string(b))
		case e.Type == fs.ModeSymlink:
			got = append(got, e.Path+" link "+e.Link)
		case e.Type == fs.ModeDir:
			got = append(got, e.Path+" dir")
		default:
			got = append(got, e.Path+" other")
		}
		return nil
	})
	return got, err
}

func TestWalkReportsWithoutFollowingOrWaiting(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "in", "b"), 0o755)
	os.WriteFile(filepath.Join(dir, "in", "z.txt"), []byte("z"), 0o644)
	os.WriteFile(filepath.Join(dir, "in", "b", "a.txt"), []byte("a"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(dir, "in", "out"))
	if err := syscall.Mkfifo(filepath.Join(dir, "in", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("in", filepath.Join(dir, "alias"))
	got, err := walkAll(t, dir, "alias", WalkLimits{Depth: 5, Entries: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := "alias dir|alias/b dir|alias/b/a.txt file a|alias/fifo other|alias/out link /etc/passwd|alias/z.txt file z"
	if strings.Join(got, "|") != want {
		t.Errorf("walk:\n got %s\nwant %s", strings.Join(got, "|"), want)
	}
	if got, err := walkAll(t, dir, "in/z.txt", WalkLimits{}); err != nil || len(got) != 1 || got[0] != "in/z.txt file z" {
		t.Errorf("a single file: %v, %v", got, err)
	}
}

func TestWalkStaysInsideAndWithinItsCaps(t *testing.T) {
	dir := t.TempDir()
	os.Symlink("/etc", filepath.Join(dir, "escape"))
	if _, err := walkAll(t, dir, "escape", WalkLimits{Depth: 5, Entries: 100}); err == nil || !strings.Contains(err.Error(), "outside the run directory") {
		t.Errorf("a link out: %v", err)
	}
	if _, err := walkAll(t, dir, "../", WalkLimits{Depth: 5, Entries: 100}); err == nil || !strings.Contains(err.Error(), "outside the run directory") {
		t.Errorf("..: %v", err)
	}
	deep := filepath.Join(dir, "d", "1", "2", "3")
	os.MkdirAll(deep, 0o755)
	if _, err := walkAll(t, dir, "d", WalkLimits{Depth: 2, Entries: 100}); err == nil || !strings.Contains(err.Error(), "nest deeper than 2") {
		t.Errorf("depth: %v", err)
	}
	if _, err := walkAll(t, dir, "d", WalkLimits{Depth: 3, Entries: 100}); err != nil {
		t.Errorf("depth 3: %v", err)
	}
	for i := 0; i < 300; i++ {
		os.WriteFile(filepath.Join(dir, "d", fmt.Sprintf("f%03d", i)), nil, 0o644)
	}
	if _, err := walkAll(t, dir, "d", WalkLimits{Depth: 5, Entries: 50}); err == nil || !strings.Contains(err.Error(), "more than 50") {
		t.Errorf("entries: %v", err)
	}
}

func TestReadFileRefusesWhatIsNoRegularFile(t *testing.T) {
	dir := t.TempDir()
	syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644)
	os.WriteFile(filepath.Join(dir, "big"), make([]byte, 11), 0o644)
	if _, err := ReadFile(dir, "fifo", 10); err == nil || !strings.Contains(err.Error(), ErrNotRegular.Error()) {
		t.Errorf("fifo: %v", err)
	}
	if _, err := ReadFile(dir, "big", 10); err == nil || !strings.Contains(err.Error(), "over 10 bytes") {
		t.Errorf("big: %v", err)
	}
	if b, err := ReadFile(dir, "big", 11); err != nil || len(b) != 11 {
		t.Errorf("big within its cap: %d bytes, %v", len(b), err)
	}
}
