package rundir

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Records is the folder of the run directory that holds wflow's records:
// the report, the journal, each step's output files, notebook parameters.
// Steps see it read-only (the engine mounts it so) and the module may read
// it but never change it (runtime's file system), so what is in it is
// wflow's own. docs/security.md.
const Records = ".wflow"

// MakeRecords makes the Records folder of dir, or checks that the one there
// is a folder: steps and the module may read it but not change it, and a
// link there (left in a run directory given with --rundir) would send the
// engine's read-only mount of it elsewhere.
func MakeRecords(dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.Mkdir(Records, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	info, err := root.Lstat(Records)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return fmt.Errorf("%s holds a %s named %s where wflow keeps its records: remove it", dir, kind(info.Mode()), Records)
	}
	return nil
}

// kind names a file mode for a message.
func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m.IsRegular():
		return "file"
	}
	return "special file"
}

// The run directory is written by steps and the module, so wflow reaches
// its files there only through os.Root (a path that would lead out is an
// error, never a write elsewhere on the host), opens them non-blocking
// (a FIFO left in their place cannot make wflow wait) and uses only a
// regular file it found (anything else is an error).

// ErrNotRegular is returned for a path that holds something other than a
// regular file: a FIFO, a device, a socket, a folder or a link.
var ErrNotRegular = errors.New("not a regular file")

// CreateFile opens rel, a path relative to dir, for writing (with flag, e.g.
// os.O_TRUNC or os.O_APPEND), creating it and its folders, without leaving
// dir, waiting on a FIFO or following a link in its last component.
func CreateFile(dir, rel string, flag int) (*os.File, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if err := root.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
		return nil, err
	}
	if info, err := root.Lstat(rel); err == nil && !info.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: rel, Err: ErrNotRegular}
	}
	f, err := root.OpenFile(rel, flag&^os.O_TRUNC|os.O_CREATE|os.O_WRONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, err
	}
	if err := regular(f, rel); err != nil {
		f.Close()
		return nil, err
	}
	if flag&os.O_TRUNC != 0 {
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// WriteFile writes data to rel atomically (a new temporary file renamed
// into place), creating its folders, without leaving dir.
func WriteFile(dir, rel string, data []byte) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	return WriteFrom(root, rel, bytes.NewReader(data), 0o644, true)
}

// WriteFrom writes what r holds to rel in root atomically (WriteIn), in
// rel's folder opened with OpenFolder: no link on the way is followed, and
// missing folders are made.
func WriteFrom(root *os.Root, rel string, r io.Reader, perm fs.FileMode, sync bool) error {
	dir, err := OpenFolder(root, filepath.Dir(rel), true)
	if err != nil {
		return err
	}
	defer dir.Close()
	return WriteIn(dir, filepath.Base(rel), r, perm, sync)
}

// ReadFile reads rel without leaving dir, waiting on a FIFO or reading more
// than max bytes: a longer file is an error wrapping ErrTooLarge.
func ReadFile(dir, rel string, max int64) ([]byte, error) {
	f, err := OpenIn(dir, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadAll(f, rel, max)
}

// OpenIn opens rel in dir as OpenRegular does: never leaving dir, a
// regular file only, never waiting on a FIFO.
func OpenIn(dir, rel string) (*os.File, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close() // an open file outlives its root
	return OpenRegular(root, rel)
}

// ReadFrom reads rel from byte offset on, at most max bytes, as ReadFile
// does (never leaving dir, never waiting on a FIFO): what was appended to a
// file since a reader last looked.
func ReadFrom(dir, rel string, offset, max int64) ([]byte, error) {
	f, err := OpenIn(dir, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.NewSectionReader(f, offset, max))
}

// Locked reports whether a process holds the run directory dir now (Lock):
// a run is going on in it. It waits for nothing; it holds a shared lock
// for an instant, which Lock waits out.
func Locked(dir string) bool {
	f, err := OpenIn(dir, LockPath)
	if err != nil {
		return false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	}
	return errors.Is(err, syscall.EWOULDBLOCK)
}

// ReadTail reads the last n bytes of rel, as ReadFile does (never leaving
// dir, never waiting on a FIFO); cut says whether the file has more
// before them.
func ReadTail(dir, rel string, n int64) (tail []byte, cut bool, err error) {
	f, err := OpenIn(dir, rel)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	from := max(info.Size()-n, 0)
	tail, err = io.ReadAll(io.NewSectionReader(f, from, n))
	return tail, from > 0, err
}

// regular checks that an opened file is a regular file.
func regular(f *os.File, rel string) error {
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return &fs.PathError{Op: "open", Path: rel, Err: ErrNotRegular}
	}
	return nil
}

// ErrLocked is returned by Lock when another process holds the run
// directory.
var ErrLocked = errors.New("another wflow run is using this run directory")

// LockPath is the lock file of a run directory, relative to it.
var LockPath = filepath.Join(Records, "lock")

// Lock takes the run directory dir for this process, so that two runs never
// share it at once (their step files and parameter files would mix): an
// exclusive flock on LockPath, which names the holder's pid, held until
// release is called or the process ends. When another process holds it,
// Lock returns an error wrapping ErrLocked, naming that process.
func Lock(dir string) (release func(), err error) {
	f, err := CreateFile(dir, LockPath, 0)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	// Locked holds a shared lock for an instant (wflow logs -f asks every
	// 250 ms): a lock held by no run is free again at once.
	for try := 0; errors.Is(err, syscall.EWOULDBLOCK) && try < 20; try++ {
		time.Sleep(10 * time.Millisecond)
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder, _ := ReadFile(dir, LockPath, 64)
			return nil, fmt.Errorf("%w (%s)", ErrLocked, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "pid %d\n", os.Getpid())
	}
	return func() { f.Close() }, nil
}
