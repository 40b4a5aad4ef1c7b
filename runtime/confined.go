package runtime

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"
)

// confinedFS is the run directory as the module sees it: wazero's DirFS,
// except that a path which, once symbolic links are resolved, leads outside
// the run directory is refused (EACCES). Steps write the run directory and
// may plant a link like `planted -> /etc` there; without this, the module,
// which runs on the host, could read and write through it.
//
// Operations that change the tree (mkdir, rename, unlink, link, symlink,
// chmod) go through os.Root, which resolves beneath the run directory
// without races. Opens and stats check the path, then DirFS does them; for
// opens, a step that swaps a component for a link in between does not win:
// the file DirFS opened must be the very file (device and inode) os.Root
// finds at that path, or it is closed and refused. Stat, readlink and
// utimens keep a small window, which can leak or touch metadata only.
type confinedFS struct {
	experimentalsys.FS
	root    string   // the run directory, symbolic links resolved
	rootDir *os.Root // the same, for race-free lookups
}

func newConfinedFS(dir string) (*confinedFS, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	rootDir, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	return &confinedFS{FS: sysfs.DirFS(root), root: root, rootDir: rootDir}, nil
}

// Close releases the race-free handle on the run directory.
func (c *confinedFS) Close() error { return c.rootDir.Close() }

// inside reports whether the guest path p stays in the run directory. With
// followLast, the last component is resolved too (open, stat); without, only
// its folder (lstat, unlink, rename, link). A path that does not exist yet
// is judged by its folder.
func (c *confinedFS) inside(p string, followLast bool) bool {
	full := filepath.Join(c.root, filepath.FromSlash(p))
	if !followLast {
		full = filepath.Dir(full)
	}
	for {
		resolved, err := filepath.EvalSymlinks(full)
		if err == nil {
			return resolved == c.root || strings.HasPrefix(resolved, c.root+string(filepath.Separator))
		}
		if !os.IsNotExist(err) || full == c.root || len(full) <= len(c.root) {
			return false
		}
		full = filepath.Dir(full) // not created yet: judge the folder it would be made in
	}
}

func (c *confinedFS) OpenFile(path string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	follow := flag&experimentalsys.O_NOFOLLOW == 0
	if !c.inside(path, follow) {
		return nil, experimentalsys.EACCES
	}
	f, errno := c.FS.OpenFile(path, flag, perm)
	if errno != 0 {
		return nil, errno
	}
	if !c.same(f, path, follow) {
		f.Close()
		return nil, experimentalsys.EACCES
	}
	return f, 0
}

// same reports whether the opened file f is the file os.Root finds at path.
func (c *confinedFS) same(f experimentalsys.File, path string, follow bool) bool {
	st, errno := f.Stat()
	if errno != 0 {
		return false
	}
	if path == "" {
		path = "."
	}
	var info fs.FileInfo
	var err error
	if follow {
		info, err = c.rootDir.Stat(path)
	} else {
		info, err = c.rootDir.Lstat(path)
	}
	if err != nil {
		return false
	}
	sys, ok := info.Sys().(*syscall.Stat_t)
	return ok && sys.Ino == st.Ino && uint64(sys.Dev) == st.Dev
}

func (c *confinedFS) Stat(path string) (sys.Stat_t, experimentalsys.Errno) {
	if !c.inside(path, true) {
		return sys.Stat_t{}, experimentalsys.EACCES
	}
	return c.FS.Stat(path)
}

func (c *confinedFS) Lstat(path string) (sys.Stat_t, experimentalsys.Errno) {
	if !c.inside(path, false) {
		return sys.Stat_t{}, experimentalsys.EACCES
	}
	return c.FS.Lstat(path)
}

// Operations that change the directory tree go through os.Root, which
// cannot be led outside the run directory, race or no race.

func (c *confinedFS) Mkdir(path string, perm fs.FileMode) experimentalsys.Errno {
	return experimentalsys.UnwrapOSError(c.rootDir.Mkdir(path, perm))
}

func (c *confinedFS) Chmod(path string, perm fs.FileMode) experimentalsys.Errno {
	return experimentalsys.UnwrapOSError(c.rootDir.Chmod(path, perm))
}

func (c *confinedFS) Rename(from, to string) experimentalsys.Errno {
	return experimentalsys.UnwrapOSError(c.rootDir.Rename(from, to))
}

func (c *confinedFS) Rmdir(path string) experimentalsys.Errno {
	info, err := c.rootDir.Lstat(path)
	if err != nil {
		return experimentalsys.UnwrapOSError(err)
	}
	if !info.IsDir() {
		return experimentalsys.ENOTDIR
	}
	return experimentalsys.UnwrapOSError(c.rootDir.Remove(path))
}

func (c *confinedFS) Unlink(path string) experimentalsys.Errno {
	info, err := c.rootDir.Lstat(path)
	if err != nil {
		return experimentalsys.UnwrapOSError(err)
	}
	if info.IsDir() {
		return experimentalsys.EISDIR
	}
	return experimentalsys.UnwrapOSError(c.rootDir.Remove(path))
}

func (c *confinedFS) Link(oldPath, newPath string) experimentalsys.Errno {
	return experimentalsys.UnwrapOSError(c.rootDir.Link(oldPath, newPath))
}

func (c *confinedFS) Symlink(oldPath, linkName string) experimentalsys.Errno {
	if filepath.IsAbs(oldPath) {
		return experimentalsys.EPERM // as wazero's DirFS: a guest may not point at host paths
	}
	return experimentalsys.UnwrapOSError(c.rootDir.Symlink(oldPath, linkName))
}

func (c *confinedFS) Readlink(path string) (string, experimentalsys.Errno) {
	if !c.inside(path, false) {
		return "", experimentalsys.EACCES
	}
	return c.FS.Readlink(path)
}

func (c *confinedFS) Utimens(path string, atim, mtim int64) experimentalsys.Errno {
	if !c.inside(path, true) {
		return experimentalsys.EACCES
	}
	return c.FS.Utimens(path, atim, mtim)
}
