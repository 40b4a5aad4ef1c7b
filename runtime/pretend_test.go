package runtime

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// runDirForPretend makes a run directory as a run leaves it.
func runDirForPretend(t *testing.T) string {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "kept"), []byte("as the run left it"), 0o644)
	os.Mkdir(filepath.Join(dir, "folder"), 0o755)
	os.Mkdir(filepath.Join(dir, ".wflow"), 0o755)
	os.Symlink("kept", filepath.Join(dir, "link"))
	return dir
}

// snapshot lists a folder's names, sizes and modes.
func snapshot(t *testing.T, dir string) map[string]string {
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if info, err := os.Lstat(p); err == nil {
			rel, _ := filepath.Rel(dir, p)
			out[rel] = info.Mode().String() + " " + string(rune(info.Size()))
		}
		return nil
	})
	return out
}

// TestPretendAnswersAsARun applies the same changes to a run directory
// with a run's file system and to an identical one pretended, as a
// replay's: each change gets the errno the run's got, and the pretended
// directory is left as it was.
func TestPretendAnswersAsARun(t *testing.T) {
	realDir, pretendDir := runDirForPretend(t), runDirForPretend(t)
	before := snapshot(t, pretendDir)
	real, err := newRootFS(realDir, ".wflow", false)
	if err != nil {
		t.Fatal(err)
	}
	defer real.Close()
	pretend, err := newRootFS(pretendDir, ".wflow", true)
	if err != nil {
		t.Fatal(err)
	}
	defer pretend.Close()
	open := func(p string, flag experimentalsys.Oflag) func(r *rootFS) experimentalsys.Errno {
		return func(r *rootFS) experimentalsys.Errno {
			f, e := r.OpenFile(p, flag, 0o644)
			if e == 0 {
				f.Write([]byte("new content"))
				f.Close()
			}
			return e
		}
	}
	const w, c, x = experimentalsys.O_WRONLY, experimentalsys.O_CREAT, experimentalsys.O_EXCL
	for _, op := range []struct {
		what string
		do   func(r *rootFS) experimentalsys.Errno
	}{
		{"atomic write: the temporary file", open("out.tmp", w|c|experimentalsys.O_TRUNC)},
		{"atomic write: the rename", func(r *rootFS) experimentalsys.Errno { return r.Rename("out.tmp", "out") }},
		{"the renamed file, exclusively", open("out", w|c|x)},
		{"the temporary file, gone", func(r *rootFS) experimentalsys.Errno { return r.Unlink("out.tmp") }},
		{"create exclusively", open("once", w|c|x)},
		{"create exclusively again", open("once", w|c|x)},
		{"create in a folder that is not there", open("missing/file", w|c)},
		{"create in .wflow", open(".wflow/forged", w|c)},
		{"remove .wflow", func(r *rootFS) experimentalsys.Errno { return r.Rmdir(".wflow") }},
		{"open a folder to write", open("folder", w)},
		{"O_NOFOLLOW on a link", open("link", w|experimentalsys.O_NOFOLLOW)},
		{"mkdir", func(r *rootFS) experimentalsys.Errno { return r.Mkdir("made", 0o755) }},
		{"a file in it", open("made/file", w|c)},
		{"mkdir again", func(r *rootFS) experimentalsys.Errno { return r.Mkdir("made", 0o755) }},
		{"mkdir of a folder there", func(r *rootFS) experimentalsys.Errno { return r.Mkdir("folder", 0o755) }},
		{"unlink a folder", func(r *rootFS) experimentalsys.Errno { return r.Unlink("folder") }},
		{"rmdir a file", func(r *rootFS) experimentalsys.Errno { return r.Rmdir("kept") }},
		{"symlink out", func(r *rootFS) experimentalsys.Errno { return r.Symlink("../../../etc", "out-link") }},
		{"symlink in", func(r *rootFS) experimentalsys.Errno { return r.Symlink("kept", "in-link") }},
		{"unlink", func(r *rootFS) experimentalsys.Errno { return r.Unlink("kept") }},
		{"unlink again", func(r *rootFS) experimentalsys.Errno { return r.Unlink("kept") }},
		{"chmod what is gone", func(r *rootFS) experimentalsys.Errno { return r.Chmod("kept", 0o600) }},
		{"rename what is gone", func(r *rootFS) experimentalsys.Errno { return r.Rename("kept", "again") }},
	} {
		if got, want := op.do(pretend), op.do(real); got != want {
			t.Errorf("%s: pretended %v, the run's %v", op.what, got, want)
		}
	}
	f, e := pretend.OpenFile("link", experimentalsys.O_RDONLY, 0)
	if e != 0 {
		t.Fatal(e)
	}
	buf := make([]byte, 64)
	n, _ := f.Read(buf)
	f.Close()
	if string(buf[:n]) != "as the run left it" {
		t.Errorf("a read sees %q: want the file as it is", buf[:n])
	}
	after := snapshot(t, pretendDir)
	if len(after) != len(before) {
		t.Errorf("the pretended run directory changed: %v, was %v", after, before)
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: %s, was %s", k, after[k], v)
		}
	}
}
