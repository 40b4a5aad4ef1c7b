package runtime

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// FuzzRootFS drives the module's file system with operations on fuzzed
// paths, in a run directory holding links that lead out (absolute,
// relative, dangling) next to a folder of host files, and a records folder
// with a link to it. Whatever the module asks, the host files and the
// records stay as they were, nothing appears outside or among the records,
// and no call panics.
func FuzzRootFS(f *testing.F) {
	for _, seed := range []string{"out/victim", "dangling", "up/../outside/victim", "a/b/../../out", "/out", "", ".", "..", "out/../../x", "fifo",
		".wflow", ".wflow/report.json", "rec/report.json", "rec", "rec/new", ".wflow/../x"} {
		f.Add(byte(0), seed, "x")
		f.Add(byte(3), seed, "../outside/new")
	}
	f.Fuzz(func(t *testing.T, op byte, p, q string) {
		base := t.TempDir()
		outside, dir := filepath.Join(base, "outside"), filepath.Join(base, "run")
		os.Mkdir(outside, 0o755)
		os.Mkdir(dir, 0o755)
		os.WriteFile(filepath.Join(outside, "victim"), []byte("host"), 0o644)
		os.Symlink(outside, filepath.Join(dir, "out"))
		os.Symlink("../outside", filepath.Join(dir, "up"))
		os.Symlink("../outside/made", filepath.Join(dir, "dangling"))
		os.Mkdir(filepath.Join(dir, ".wflow"), 0o755)
		os.WriteFile(filepath.Join(dir, ".wflow", "report.json"), []byte("record"), 0o644)
		os.Symlink(".wflow", filepath.Join(dir, "rec"))
		r, err := newRootFS(dir, ".wflow", false)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		switch op % 10 {
		case 0:
			if file, e := r.OpenFile(p, experimentalsys.O_RDWR|experimentalsys.O_CREAT|experimentalsys.O_TRUNC, 0o644); e == 0 {
				file.Write([]byte(q))
				file.Truncate(0)
				file.Close()
			}
		case 1:
			if file, e := r.OpenFile(p, experimentalsys.O_WRONLY|experimentalsys.O_APPEND|experimentalsys.O_CREAT, 0o644); e == 0 {
				file.SetAppend(false)
				file.Pwrite([]byte(q), 0)
				file.Close()
			}
		case 2:
			r.Rename(p, q)
		case 3:
			r.Symlink(q, p)
			if file, e := r.OpenFile(p, experimentalsys.O_WRONLY|experimentalsys.O_CREAT, 0o644); e == 0 {
				file.Close()
			}
		case 4:
			r.Link(p, q)
		case 5:
			r.Unlink(p)
			r.Rmdir(q)
		case 6:
			r.Mkdir(p, 0o755)
			r.Chmod(q, 0o777)
		case 7:
			r.Utimens(p, 0, 0)
		case 8:
			r.Stat(p)
			r.Lstat(q)
			r.Readlink(p)
		case 9:
			if file, e := r.OpenFile(p, experimentalsys.O_RDONLY|experimentalsys.O_DIRECTORY, 0); e == 0 {
				file.Readdir(-1)
				file.Seek(0, 0)
				file.Close()
			}
		}
		entries, _ := os.ReadDir(outside)
		if len(entries) != 1 {
			t.Fatalf("op %d (%q, %q) made %d entries outside", op%10, p, q, len(entries))
		}
		if b, _ := os.ReadFile(filepath.Join(outside, "victim")); !bytes.Equal(b, []byte("host")) {
			t.Fatalf("op %d (%q, %q) changed a host file: %q", op%10, p, q, b)
		}
		if entries, _ := os.ReadDir(filepath.Join(dir, ".wflow")); len(entries) != 1 {
			t.Fatalf("op %d (%q, %q) changed the records folder: %d entries", op%10, p, q, len(entries))
		}
		if b, _ := os.ReadFile(filepath.Join(dir, ".wflow", "report.json")); !bytes.Equal(b, []byte("record")) {
			t.Fatalf("op %d (%q, %q) changed a record: %q", op%10, p, q, b)
		}
		if info, err := os.Lstat(filepath.Join(dir, ".wflow", "report.json")); err != nil || info.Mode().Perm() != 0o644 || info.ModTime().Unix() == 0 {
			t.Fatalf("op %d (%q, %q) changed a record's metadata: %v", op%10, p, q, err)
		}
		info, err := os.Stat(filepath.Join(outside, "victim"))
		if err != nil || info.Mode().Perm() != 0o644 || info.ModTime().Unix() == 0 {
			t.Fatalf("op %d (%q, %q) changed a host file's metadata: %v %v", op%10, p, q, info.Mode(), err)
		}
	})
}
