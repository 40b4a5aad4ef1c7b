// Package rundir makes a run directory safe to share between the host and
// the steps that write it: it creates the folder out of other users' reach,
// keeps files the steps make from carrying privileges on the host while the
// run lasts (a nosuid,nodev mount, where wflow may mount), and clears the
// setuid and setgid bits they left once it is over. docs/security.md says
// why each is needed.
package rundir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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
// directories it released.
func ReapGuards(stateDir string, alive func(owner string) bool) ([]string, error) {
	entries, err := os.ReadDir(stateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var released []string
	var errs []error
	for _, e := range entries {
		owner, _, ok := strings.Cut(e.Name(), ".")
		if !ok || alive(owner) {
			continue
		}
		record := filepath.Join(stateDir, e.Name())
		b, err := os.ReadFile(record)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		dir := string(b)
		if _, err := Sweep(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
			errs = append(errs, fmt.Errorf("unmount %s: %w", dir, err))
			continue
		}
		os.Remove(record)
		released = append(released, dir)
	}
	return released, errors.Join(errs...)
}

// ErrCannotMount is returned by Guard when this process may not mount.
var ErrCannotMount = errors.New("cannot mount the run directory nosuid,nodev")

// Sweep clears the setuid and setgid bits of every file under dir, without
// following symbolic links or leaving dir, and returns the paths (relative
// to dir) it changed. Run it when no step runs any more: it is what keeps a
// setuid file a step made from working on the host after the run.
func Sweep(dir string) ([]string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	var changed []string
	var errs []error
	err = fs.WalkDir(root.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := root.Lstat(path)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		mode := info.Mode()
		if mode&(fs.ModeSetuid|fs.ModeSetgid) == 0 || mode&fs.ModeSymlink != 0 {
			return nil
		}
		if d.IsDir() && mode&fs.ModeSetuid == 0 {
			return nil // a setgid folder only passes its group on; it grants nothing
		}
		if err := root.Chmod(path, mode.Perm()|(mode&fs.ModeSticky)); err != nil {
			errs = append(errs, err)
			return nil
		}
		changed = append(changed, path)
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return changed, errors.Join(errs...)
}
