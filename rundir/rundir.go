// Package rundir makes a run directory safe to share between the host and
// the steps that write it: it creates the folder out of other users' reach,
// keeps files the steps make from carrying privileges on the host while the
// run lasts (a nosuid,nodev mount, where wflow may mount), and clears the
// setuid and setgid bits they left once it is over. It is also the one way
// wflow reads and writes files there (ReadFile, Walk, CreateFile,
// WriteFile): through os.Root, non-blocking, regular files only, so a link
// or a FIFO a step leaves cannot lead wflow outside or make it wait.
// docs/security.md says why each is needed.
package rundir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/wflow/wflow/internal/clip"
)

// Create makes dir, and the folders above it that do not exist yet, with
// mode 0700: a step may chmod the run directory itself (it owns it), but not
// a folder above it, so a new parent keeps other users out whatever the
// steps do. An existing dir is used as it is.
func Create(dir string) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return nil
}

// Guard mounts dir over itself with nosuid and nodev for as long as the run
// lasts, so that the host honours neither a setuid bit nor a device node
// that a step makes there; the engine's bind mount of dir inherits both
// flags. It needs the right to mount (root with CAP_SYS_ADMIN): without it,
// Guard returns a no-op release and an error wrapping ErrCannotMount, and
// the run relies on the other layers (docs/security.md).
// Release may be called more than once; it unmounts once.
//
// A mount outlives a process that is killed, so Guard records it in
// stateDir under owner (the process's pid-start id); ReapGuards unmounts
// the guards of owners that no longer run. Release unmounts and forgets.
func Guard(dir, stateDir, owner string) (release func() error, err error) {
	noop := func() error { return nil }
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return noop, fmt.Errorf("%w: %v", ErrCannotMount, err)
	}
	record, err := os.CreateTemp(stateDir, owner+".*")
	if err != nil {
		return noop, fmt.Errorf("%w: %v", ErrCannotMount, err)
	}
	_, werr := record.WriteString(dir)
	if err := errors.Join(werr, record.Close()); err != nil {
		os.Remove(record.Name())
		return noop, fmt.Errorf("%w: %v", ErrCannotMount, err)
	}
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		os.Remove(record.Name())
		return noop, fmt.Errorf("%w: %v", ErrCannotMount, err)
	}
	var once sync.Once
	release = func() (err error) {
		once.Do(func() {
			if uerr := syscall.Unmount(dir, syscall.MNT_DETACH); uerr != nil {
				err = fmt.Errorf("unmount the run directory's guard: %w", uerr)
				return
			}
			os.Remove(record.Name())
		})
		return err
	}
	flags := uintptr(syscall.MS_REMOUNT | syscall.MS_BIND | syscall.MS_NOSUID | syscall.MS_NODEV)
	if err := syscall.Mount("", dir, "", flags, ""); err != nil {
		release()
		return noop, fmt.Errorf("%w: %v", ErrCannotMount, err)
	}
	return release, nil
}

// ReapGuards unmounts the guards recorded in stateDir whose owner is no
// longer alive, clears the setuid bits their runs left, and returns the run
// directories it released. A folder a live owner has guarded again, or whose
// lock another run holds (it is about to guard it: an unmount by path would
// take its mount), is left for later; mine is the run directory the caller
// holds the lock of ("" for none), whose dead guards it releases. A sweep
// that does not finish keeps its guard (ErrIncomplete).
func ReapGuards(ctx context.Context, stateDir string, alive func(owner string) bool, mine string) ([]string, error) {
	entries, err := os.ReadDir(stateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// A run directory a live wflow uses again (--rundir) is left alone: its
	// steps may be writing it, and an unmount by path would take the live
	// run's mount, the topmost one.
	type record struct{ path, dir string }
	var dead []record
	live := map[string]bool{}
	for _, e := range entries {
		owner, _, ok := strings.Cut(e.Name(), ".")
		if !ok {
			continue
		}
		p := filepath.Join(stateDir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			continue // released meanwhile
		}
		if alive(owner) {
			live[string(b)] = true
		} else {
			dead = append(dead, record{p, string(b)})
		}
	}
	var released []string
	var errs []error
	for _, r := range dead {
		if live[r.dir] {
			continue
		}
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("%w: %v", ErrIncomplete, ctx.Err()))
			break
		}
		dir := r.dir
		if dir != mine {
			unlock, ok := tryLock(dir)
			if !ok {
				continue // another run holds it
			}
			defer unlock()
		}
		if _, err := Sweep(ctx, dir); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			if errors.Is(err, ErrIncomplete) {
				continue // keep the mount and its record: a later gc sweeps again
			}
		}
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
			errs = append(errs, fmt.Errorf("unmount %s: %w", dir, err))
			continue
		}
		os.Remove(r.path)
		released = append(released, dir)
	}
	return released, errors.Join(errs...)
}

// tryLock takes the lock of the run directory dir, when it has a lock
// file, without waiting and without creating anything; ok is false when
// another run holds it.
func tryLock(dir string) (unlock func(), ok bool) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return func() {}, true
	}
	defer root.Close()
	f, err := root.OpenFile(LockPath, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return func() {}, true // no lock file: no run holds it
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return func() {}, !errors.Is(err, syscall.EWOULDBLOCK)
	}
	return func() { f.Close() }, true
}

// ErrCannotMount is returned by Guard when this process may not mount.
var ErrCannotMount = errors.New("cannot mount the run directory nosuid,nodev")

// Sweep clears the setuid and setgid bits of every file under dir, without
// following symbolic links or leaving dir, and returns the paths (relative
// to dir) it changed. Run it when no step runs any more: it is what keeps a
// setuid file a step made from working on the host after the run.
//
// It walks with folder descriptors (openat, fstatat relative to the folder),
// so its cost grows with the number of files, not with their depth, and it
// stops when ctx ends: a step can make a tree of any size. err wraps
// ErrIncomplete when it did not see every file; keep the run directory
// mounted nosuid then (Guard), and sweep again later (wflow gc).
func Sweep(ctx context.Context, dir string) (changed []string, err error) {
	cur, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer func() { unix.Close(cur) }()
	// Only the folder being looked at is open: a tree as deep as a step
	// likes must not run out of descriptors. Each level of the stack keeps
	// its path and the names left; going back up is openat(".."), which
	// holds because nothing moves folders any more.
	type level struct {
		path  string
		id    [2]uint64 // device and inode: going back up must reach this very folder
		names []string
	}
	var errs []error
	identity := func(fd int) ([2]uint64, error) {
		var st unix.Stat_t
		err := unix.Fstat(fd, &st)
		return [2]uint64{st.Dev, st.Ino}, err
	}
	list := func(p string) (level, error) {
		id, err := identity(cur)
		if err != nil {
			return level{}, err
		}
		dup, err := unix.Dup(cur) // the listing's own descriptor, closed after it
		if err != nil {
			return level{}, err
		}
		f := os.NewFile(uintptr(dup), p)
		defer f.Close()
		var names []string
		for { // in chunks, so that a folder of millions of names keeps to the budget
			chunk, err := f.Readdirnames(4096)
			names = append(names, chunk...)
			if err == io.EOF || (err == nil && len(chunk) == 0) {
				break
			}
			if err != nil {
				errs = append(errs, err)
				break
			}
			if ctx.Err() != nil {
				return level{}, ctx.Err()
			}
		}
		return level{path: p, id: id, names: names}, nil
	}
	first, err := list(".")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIncomplete, err)
	}
	stack := []level{first}
	for steps := 0; len(stack) > 0; steps++ {
		if steps%1024 == 0 && ctx.Err() != nil {
			return changed, fmt.Errorf("%w: %v", ErrIncomplete, ctx.Err())
		}
		top := &stack[len(stack)-1]
		if len(top.names) == 0 {
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				break
			}
			up, err := unix.Openat(cur, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			if err != nil {
				return changed, fmt.Errorf("%w: going back up from %s: %v", ErrIncomplete, shortPath(top.path), err)
			}
			unix.Close(cur)
			cur = up
			// The folder above must be the one listed on the way down: if a
			// folder was moved meanwhile, ".." is somewhere else (outside
			// the run directory, even), and its names are not ours.
			if id, err := identity(cur); err != nil || id != stack[len(stack)-1].id {
				return changed, fmt.Errorf("%w: a folder moved while the sweep ran (back up from %s)", ErrIncomplete, shortPath(top.path))
			}
			continue
		}
		name := top.names[0]
		top.names = top.names[1:]
		p := path.Join(top.path, name)
		var st unix.Stat_t
		if err := unix.Fstatat(cur, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue // gone since the listing
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if st.Mode&unix.S_ISUID != 0 {
				errs = append(errs, clearBits(cur, name, st.Mode&^(unix.S_ISUID|unix.S_ISGID)))
				changed = append(changed, p)
			}
			down, err := unix.Openat(cur, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			if err != nil {
				errs = append(errs, &fs.PathError{Op: "open", Path: shortPath(p), Err: err})
				continue
			}
			unix.Close(cur)
			cur = down
			lv, err := list(p)
			if err != nil {
				return changed, fmt.Errorf("%w: %v", ErrIncomplete, err)
			}
			stack = append(stack, lv)
		case unix.S_IFREG:
			if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
				errs = append(errs, clearBits(cur, name, st.Mode&^(unix.S_ISUID|unix.S_ISGID)))
				changed = append(changed, p)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return changed, fmt.Errorf("%w: %v", ErrIncomplete, err)
	}
	return changed, nil
}

// shortPath cuts a path for a message: a step can make one of any length.
func shortPath(p string) string {
	if len(p) <= 120 {
		return p
	}
	return clip.String(p, 60) + clip.Tail(p, 57)
}

// ErrIncomplete is wrapped by Sweep when it could not see every file.
var ErrIncomplete = errors.New("the sweep of setuid bits did not finish")

// clearBits sets the mode of name in the folder dfd through a descriptor of
// the file itself, so that nothing swapped in at the last moment is changed.
func clearBits(dfd int, name string, mode uint32) error {
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fchmod(fd, mode&0o7777)
}
