package runtime

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"

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
// The check resolves the path, then DirFS opens it: a step that swaps a
// component for a link between the two can still win that race. Closing it
// needs a sys.FS built on os.Root (openat2 with RESOLVE_BENEATH), which wazero
// does not offer yet.
type confinedFS struct {
	experimentalsys.FS
	root string // the run directory, symbolic links resolved
}

func newConfinedFS(dir string) (experimentalsys.FS, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	return &confinedFS{FS: sysfs.DirFS(root), root: root}, nil
}

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
	if !c.inside(path, flag&experimentalsys.O_NOFOLLOW == 0) {
		return nil, experimentalsys.EACCES
	}
	return c.FS.OpenFile(path, flag, perm)
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

func (c *confinedFS) Mkdir(path string, perm fs.FileMode) experimentalsys.Errno {
	if !c.inside(path, false) {
		return experimentalsys.EACCES
	}
	return c.FS.Mkdir(path, perm)
}

func (c *confinedFS) Chmod(path string, perm fs.FileMode) experimentalsys.Errno {
	if !c.inside(path, true) {
		return experimentalsys.EACCES
	}
	return c.FS.Chmod(path, perm)
}

func (c *confinedFS) Rename(from, to string) experimentalsys.Errno {
	if !c.inside(from, false) || !c.inside(to, false) {
		return experimentalsys.EACCES
	}
	return c.FS.Rename(from, to)
}

func (c *confinedFS) Rmdir(path string) experimentalsys.Errno {
	if !c.inside(path, false) {
		return experimentalsys.EACCES
	}
	return c.FS.Rmdir(path)
}

func (c *confinedFS) Unlink(path string) experimentalsys.Errno {
	if !c.inside(path, false) {
		return experimentalsys.EACCES
	}
	return c.FS.Unlink(path)
}

func (c *confinedFS) Link(oldPath, newPath string) experimentalsys.Errno {
	if !c.inside(oldPath, true) || !c.inside(newPath, false) {
		return experimentalsys.EACCES
	}
	return c.FS.Link(oldPath, newPath)
}

func (c *confinedFS) Symlink(oldPath, linkName string) experimentalsys.Errno {
	if !c.inside(linkName, false) {
		return experimentalsys.EACCES
	}
	return c.FS.Symlink(oldPath, linkName)
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
