package rundir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestCreateMakesPrivateFolders(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "runs", "one")
	if err := Create(dir); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(base, "runs"), dir} {
		if info, err := os.Stat(d); err != nil || info.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v; want a folder of mode 0700", d, info.Mode(), err)
		}
	}
}

// wflow's own files: a FIFO, a link or a device where one should be makes
// an error at once, never a wait or a write elsewhere.
func TestFilesRefuseWhatAStepPlants(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(dir, Records, "steps"), 0o755)
	if err := syscall.Mkfifo(filepath.Join(dir, Records, "steps", "stdout"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(outside, "victim"), []byte("host"), 0o644)
	os.Symlink(filepath.Join(outside, "victim"), filepath.Join(dir, Records, "linked"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := CreateFile(dir, filepath.Join(Records, "steps", "stdout"), os.O_TRUNC); !errors.Is(err, ErrNotRegular) {
			t.Errorf("create over a FIFO: %v", err)
		}
		if _, err := ReadFile(dir, filepath.Join(Records, "steps", "stdout"), 1<<20); !errors.Is(err, ErrNotRegular) {
			t.Errorf("read a FIFO: %v", err)
		}
		if _, err := CreateFile(dir, filepath.Join(Records, "linked"), os.O_APPEND); err == nil {
			t.Error("wrote through a link to a host file")
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("blocked on a FIFO")
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "victim")); string(b) != "host" {
		t.Errorf("host file %q", b)
	}
	os.WriteFile(filepath.Join(dir, "big"), make([]byte, 2000), 0o644)
	if _, err := ReadFile(dir, "big", 1000); err == nil || !strings.Contains(err.Error(), "over 1000 bytes") {
		t.Errorf("a file over the cap: %v", err)
	}
	if b, err := ReadFile(dir, "big", 2000); err != nil || len(b) != 2000 {
		t.Errorf("a file at the cap: %d bytes, %v", len(b), err)
	}
}

func TestMakeRecordsRefusesALink(t *testing.T) {
	dir := t.TempDir()
	os.Symlink(t.TempDir(), filepath.Join(dir, Records))
	if err := MakeRecords(dir); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("MakeRecords over a link: %v", err)
	}
	dir = t.TempDir()
	if err := MakeRecords(dir); err != nil {
		t.Fatal(err)
	}
	if err := MakeRecords(dir); err != nil {
		t.Errorf("again: %v", err)
	}
}

func TestSweepClearsPrivilegeBits(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
	for _, f := range []string{"suid", "a/sgid", "a/b/plain"} {
		os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o755)
	}
	os.Chmod(filepath.Join(dir, "suid"), 0o755|fs.ModeSetuid)
	os.Chmod(filepath.Join(dir, "a/sgid"), 0o750|fs.ModeSetgid)
	os.Chmod(filepath.Join(dir, "a"), 0o755|fs.ModeSetgid) // a setgid folder is left alone
	os.Symlink("/usr/bin/passwd", filepath.Join(dir, "link"))
	changed, err := Sweep(context.Background(), dir)
	sort.Strings(changed)
	if err != nil || strings.Join(changed, ",") != "a/sgid,suid" {
		t.Errorf("changed %v, %v", changed, err)
	}
	for f, want := range map[string]fs.FileMode{"suid": 0o755, "a/sgid": 0o750, "a": 0o755 | fs.ModeSetgid | fs.ModeDir} {
		if info, _ := os.Lstat(filepath.Join(dir, f)); info.Mode() != want {
			t.Errorf("%s: %v, want %v", f, info.Mode(), want)
		}
	}
}

// A step can make a tree of any depth: the sweep's cost follows the number
// of files, not their depth (it walked from the top for every file, and a
// tree 12000 deep kept a run going for minutes), and it stops when told to.
func TestSweepOfADeepTree(t *testing.T) {
	dir := t.TempDir()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5000; i++ { // relative mkdirs: no path grows past PATH_MAX
		if err := unix.Mkdirat(fd, "d", 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
	}
	sfd, err := unix.Openat(fd, "suid", unix.O_CREAT|unix.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	unix.Fchmod(sfd, 0o4755)
	unix.Close(sfd)
	unix.Close(fd)
	// With few descriptors: the sweep holds one folder open at a time (one
	// per level ran out of them 40000 folders deep).
	var lim unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	low := lim
	low.Cur = 256
	unix.Setrlimit(unix.RLIMIT_NOFILE, &low)
	start := time.Now()
	changed, err := Sweep(context.Background(), dir)
	unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	if err != nil || len(changed) != 1 || !strings.HasSuffix(changed[0], "/d/suid") {
		t.Errorf("sweep: %d changed, %v", len(changed), err)
	}
	t.Logf("swept 5000 nested folders in %s", time.Since(start))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Sweep(ctx, dir); !errors.Is(err, ErrIncomplete) {
		t.Errorf("a cancelled sweep: %v, want ErrIncomplete", err)
	}
}

// A folder moved while the sweep is in it must not lead the sweep out: going
// back up through ".." would land outside the run directory, where names
// like the run directory's own mean host files.
func TestSweepDoesNotFollowAMovedFolderOut(t *testing.T) {
	parent := t.TempDir()
	run := filepath.Join(parent, "run")
	os.MkdirAll(filepath.Join(run, "a", "b"), 0o755)
	os.MkdirAll(filepath.Join(run, "a", "victim"), 0o755)
	os.MkdirAll(filepath.Join(parent, "victim"), 0o755)
	host := filepath.Join(parent, "victim", "sbit")
	os.WriteFile(host, []byte("x"), 0o755)
	os.Chmod(host, 0o755|fs.ModeSetuid)
	marker := filepath.Join(run, "a", "b", "m")
	os.WriteFile(marker, []byte("x"), 0o755)
	os.Chmod(marker, 0o755|fs.ModeSetuid)
	for i := 0; i < 5000; i++ {
		os.WriteFile(filepath.Join(run, "a", "b", fmt.Sprintf("f%05d", i)), nil, 0o644)
	}
	moved := make(chan struct{})
	go func() { // as a step would: once the sweep is in a/b, move a/b out from under it
		defer close(moved)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			if info, err := os.Stat(marker); err == nil && info.Mode()&fs.ModeSetuid == 0 {
				os.Rename(filepath.Join(run, "a", "b"), filepath.Join(parent, "b2"))
				return
			}
		}
	}()
	Sweep(context.Background(), run)
	<-moved
	if info, _ := os.Stat(host); info.Mode()&fs.ModeSetuid == 0 {
		t.Error("the sweep cleared the setuid bit of a file outside the run directory")
	}
}

// TestLock: one holder at a time; the second is told who holds it.
func TestLock(t *testing.T) {
	dir := t.TempDir()
	if err := MakeRecords(dir); err != nil {
		t.Fatal(err)
	}
	release, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(dir); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("second lock: %v", err)
	}
	release()
	again, err := Lock(dir)
	if err != nil {
		t.Errorf("after release: %v", err)
	} else {
		again()
	}
}

// mountsAt counts the mounts whose mount point is dir.
func mountsAt(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Skip("no /proc/self/mountinfo")
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			n++
		}
	}
	return n
}

// TestReapLeavesALockedRunDirectory: the guard a dead run left on a run
// directory that another run holds (it is resuming there, about to guard
// it) is left to that run: an unmount by path could take the fresh mount.
// The holder itself releases it.
func TestReapLeavesALockedRunDirectory(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	if err := MakeRecords(dir); err != nil {
		t.Fatal(err)
	}
	release, err := Guard(dir, state, "dead-1")
	if errors.Is(err, ErrCannotMount) {
		t.Skipf("cannot mount here (%v): the guard is root's", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { release() })
	unlock, err := Lock(dir) // the resuming run
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	dead := func(string) bool { return false }
	if released, err := ReapGuards(context.Background(), state, dead, ""); err != nil || len(released) != 0 || mountsAt(t, dir) != 1 {
		t.Fatalf("another process's reap of a locked run directory: released %v, %v; %d mounts left, want 1", released, err, mountsAt(t, dir))
	}
	if released, err := ReapGuards(context.Background(), state, dead, dir); err != nil || len(released) != 1 || mountsAt(t, dir) != 0 {
		t.Fatalf("the holder's reap: released %v, %v; %d mounts left, want 0", released, err, mountsAt(t, dir))
	}
}
