package rundir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// OpenFolder opens the folder rel of root one component at a time with
// O_NOFOLLOW|O_DIRECTORY, so that no symbolic link on the way is followed,
// not even one that stays inside root: a write through the folder lands at
// the path its text names, never in wflow's records by way of a link a step
// planted. With create, missing folders are made (0755). A link, a file or
// a FIFO where a folder should be is an error.
func OpenFolder(root *os.Root, rel string, create bool) (*os.File, error) {
	top, err := root.OpenFile(".", os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Dup(int(top.Fd()))
	top.Close()
	if err != nil {
		return nil, err
	}
	rel = path.Clean(rel)
	if rel != "." {
		for _, c := range strings.Split(rel, "/") {
			if c == ".." || c == "" {
				unix.Close(fd)
				return nil, fmt.Errorf("%s lies outside the run directory", rel)
			}
			next, err := openDir(fd, c)
			if errors.Is(err, unix.ENOENT) && create {
				if err = unix.Mkdirat(fd, c, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
					next, err = openDir(fd, c)
				}
			}
			unix.Close(fd)
			if err != nil {
				if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
					return nil, fmt.Errorf("%s: %s is a symbolic link or no folder", rel, c)
				}
				return nil, &fs.PathError{Op: "open", Path: rel, Err: err}
			}
			fd = next
		}
	}
	return os.NewFile(uintptr(fd), rel), nil
}

func openDir(dirfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

// WriteIn writes what r holds to name in the folder dir atomically: into a
// new temporary file beside it (O_EXCL, a random name), synced when sync
// says so, then renamed over name. Whatever name was (a file, a link) is
// replaced, never followed; a folder there is an error.
func WriteIn(dir *os.File, name string, r io.Reader, perm fs.FileMode, sync bool) error {
	dfd := int(dir.Fd())
	var f *os.File
	var tmp string
	for range 100 {
		tmp = fmt.Sprintf(".%s.wflow-%08x", name, rand.Uint32())
		fd, err := unix.Openat(dfd, tmp, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm))
		if err == nil {
			f = os.NewFile(uintptr(fd), tmp)
			break
		}
		if !errors.Is(err, unix.EEXIST) {
			return &fs.PathError{Op: "create", Path: name, Err: err}
		}
	}
	if f == nil {
		return fmt.Errorf("%s: no free temporary name", name)
	}
	_, werr := io.Copy(f, r)
	if werr == nil {
		werr = f.Chmod(perm) // the umask may have cut it
	}
	if werr == nil && sync {
		werr = f.Sync()
	}
	if err := errors.Join(werr, f.Close()); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return err
	}
	if err := unix.Renameat(dfd, tmp, dfd, name); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return &fs.PathError{Op: "rename", Path: name, Err: err}
	}
	return nil
}

// SymlinkIn makes name in the folder dir a link to target, replacing a file
// or link there; a folder there is an error.
func SymlinkIn(dir *os.File, name, target string) error {
	dfd := int(dir.Fd())
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return fmt.Errorf("%s: a folder is where a link goes", name)
		}
		if err := unix.Unlinkat(dfd, name, 0); err != nil {
			return &fs.PathError{Op: "remove", Path: name, Err: err}
		}
	}
	if err := unix.Symlinkat(target, dfd, name); err != nil {
		return &fs.PathError{Op: "symlink", Path: name, Err: err}
	}
	return nil
}

// MkdirIn makes name in the folder dir a folder, replacing a file or link
// there.
func MkdirIn(dir *os.File, name string) error {
	dfd := int(dir.Fd())
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return nil
		}
		if err := unix.Unlinkat(dfd, name, 0); err != nil {
			return &fs.PathError{Op: "remove", Path: name, Err: err}
		}
	}
	if err := unix.Mkdirat(dfd, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return &fs.PathError{Op: "mkdir", Path: name, Err: err}
	}
	return nil
}
