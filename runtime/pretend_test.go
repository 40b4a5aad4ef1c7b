package runtime

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// TestPretendChangesNothing: in a replay every change the module makes
// succeeds, or fails as it would, and the run directory stays as it was;
// reads see it as it is.
func TestPretendChangesNothing(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "kept"), []byte("as the run left it"), 0o644)
	os.Mkdir(filepath.Join(dir, "folder"), 0o755)
	os.Mkdir(filepath.Join(dir, ".wflow"), 0o755)
	r, err := newRootFS(dir, ".wflow", true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	f, e := r.OpenFile("kept", experimentalsys.O_RDWR|experimentalsys.O_TRUNC, 0)
	if e != 0 {
		t.Fatalf("open for writing: %v", e)
	}
	if n, e := f.Write([]byte("overwritten")); n != 11 || e != 0 {
		t.Errorf("write: %d, %v", n, e)
	}
	buf := make([]byte, 64)
	n, _ := f.Read(buf)
	f.Close()
	if string(buf[:n]) != "as the run left it" {
		t.Errorf("read back %q: want the file as it is", buf[:n])
	}
	if f, e := r.OpenFile("new/file", experimentalsys.O_WRONLY|experimentalsys.O_CREAT, 0o644); e != 0 {
		t.Errorf("create in a folder that is not there: %v", e)
	} else {
		f.Close()
	}
	for _, c := range []struct {
		what string
		got  experimentalsys.Errno
		want experimentalsys.Errno
	}{
		{"mkdir new", r.Mkdir("made", 0o755), 0},
		{"mkdir existing", r.Mkdir("folder", 0o755), experimentalsys.EEXIST},
		{"unlink existing", r.Unlink("kept"), 0},
		{"unlink missing", r.Unlink("missing"), experimentalsys.ENOENT},
		{"rename", r.Rename("kept", "moved"), 0},
		{"rmdir", r.Rmdir("folder"), 0},
		{"symlink", r.Symlink("kept", "link"), 0},
		{"change a record", r.Unlink(".wflow"), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	var names []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		names = append(names, rel)
		return nil
	})
	if got := len(names); got != 4 { // ., .wflow, folder, kept
		t.Errorf("the run directory changed: %v", names)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "kept")); string(b) != "as the run left it" {
		t.Errorf("kept = %q", b)
	}
}
