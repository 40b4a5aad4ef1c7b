package runtime

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/unix"
)

// rootFS is the run directory as the module sees it, built wholly on
// os.Root: every path the module names is resolved beneath the run
// directory by the kernel's openat family, one component at a time, so a
// symbolic link a step plants (`planted -> /etc`, or a folder swapped for a
// link while the module works) can never lead outside it, and no path is
// checked first and opened again. Only regular files and folders can be
// opened: every open is non-blocking and a FIFO, socket or device is closed
// and refused (EACCES) before the module can read or write it, so a FIFO
// cannot hang the run. docs/security.md lists what it guarantees.
type rootFS struct {
	experimentalsys.UnimplementedFS
	root *os.Root
}

func newRootFS(dir string) (*rootFS, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &rootFS{root: root}, nil
}

// Close releases the handle on the run directory.
func (r *rootFS) Close() error { return r.root.Close() }

// name turns a guest path into the name os.Root wants. wazero hands paths
// relative to the run directory, "" for itself, and "/x" for x in a folder
// it opened as "" (it joins with a slash).
func name(p string) string {
	if p = strings.TrimLeft(p, "/"); p == "" {
		return "."
	}
	return p
}

// errno maps an error of os or os.Root to the errno a guest sees. os.Root
// refuses a path that would leave the root with an error that is no errno;
// the guest sees EACCES, like any other refusal here.
func errno(err error) experimentalsys.Errno {
	if err == nil {
		return 0
	}
	inner := err
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		inner = pe.Err
	case errors.As(err, &le):
		inner = le.Err
	}
	var en syscall.Errno
	if !errors.As(inner, &en) && !errors.Is(inner, fs.ErrNotExist) && !errors.Is(inner, fs.ErrExist) &&
		!errors.Is(inner, fs.ErrPermission) && !errors.Is(inner, fs.ErrClosed) && !errors.Is(inner, fs.ErrInvalid) {
		return experimentalsys.EACCES
	}
	return experimentalsys.UnwrapOSError(err)
}

// OpenFile opens path beneath the run directory. O_NOFOLLOW refuses a
// symbolic link in the last component (ELOOP), as POSIX says; other links
// are followed as long as they stay inside.
func (r *rootFS) OpenFile(p string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	osflag := syscall.O_NONBLOCK | syscall.O_CLOEXEC
	switch flag & (experimentalsys.O_RDONLY | experimentalsys.O_WRONLY | experimentalsys.O_RDWR) {
	case experimentalsys.O_WRONLY:
		osflag |= os.O_WRONLY
	case experimentalsys.O_RDWR:
		osflag |= os.O_RDWR
	}
	for _, f := range []struct {
		wasi experimentalsys.Oflag
		os   int
	}{
		{experimentalsys.O_APPEND, os.O_APPEND},
		{experimentalsys.O_CREAT, os.O_CREATE},
		{experimentalsys.O_EXCL, os.O_EXCL},
		{experimentalsys.O_TRUNC, os.O_TRUNC},
		{experimentalsys.O_DIRECTORY, syscall.O_DIRECTORY},
		{experimentalsys.O_SYNC, os.O_SYNC},
		{experimentalsys.O_DSYNC, syscall.O_DSYNC},
	} {
		if flag&f.wasi != 0 {
			osflag |= f.os
		}
	}
	n := name(p)
	if flag&experimentalsys.O_NOFOLLOW != 0 {
		// os.Root follows a link in the last component; look first, then
		// open with the folder resolved and O_NOFOLLOW on the last name, so
		// a link swapped in between is refused by the kernel, not followed.
		if info, err := r.root.Lstat(n); err == nil && info.Mode()&fs.ModeSymlink != 0 {
			return nil, experimentalsys.ELOOP
		}
		osflag |= syscall.O_NOFOLLOW
	}
	if osflag&(os.O_TRUNC) != 0 && osflag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return nil, experimentalsys.EINVAL // truncating needs write access, as in POSIX
	}
	// O_TRUNC is held back until the file is known to be a regular file.
	f, err := r.root.OpenFile(n, osflag&^os.O_TRUNC, perm.Perm())
	if err != nil {
		return nil, errno(err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, errno(err)
	}
	if !info.Mode().IsRegular() && !info.IsDir() {
		f.Close()
		return nil, experimentalsys.EACCES // a FIFO, socket or device: never opened for the module
	}
	if osflag&os.O_TRUNC != 0 && info.Mode().IsRegular() {
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, errno(err)
		}
	}
	return &rootFile{f: f, append: flag&experimentalsys.O_APPEND != 0}, 0
}

// Stat implements experimentalsys.FS.
func (r *rootFS) Stat(p string) (sys.Stat_t, experimentalsys.Errno) {
	info, err := r.root.Stat(name(p))
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(info), 0
}

// Lstat implements experimentalsys.FS.
func (r *rootFS) Lstat(p string) (sys.Stat_t, experimentalsys.Errno) {
	info, err := r.root.Lstat(name(p))
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(info), 0
}

// Readlink implements experimentalsys.FS.
func (r *rootFS) Readlink(p string) (string, experimentalsys.Errno) {
	dst, err := r.root.Readlink(name(p))
	return dst, errno(err)
}

// Mkdir implements experimentalsys.FS.
func (r *rootFS) Mkdir(p string, perm fs.FileMode) experimentalsys.Errno {
	return errno(r.root.Mkdir(name(p), perm.Perm()))
}

// Chmod implements experimentalsys.FS. Only permission bits: a module never
// makes a setuid file.
func (r *rootFS) Chmod(p string, perm fs.FileMode) experimentalsys.Errno {
	return errno(r.root.Chmod(name(p), perm.Perm()))
}

// Rename implements experimentalsys.FS.
func (r *rootFS) Rename(from, to string) experimentalsys.Errno {
	return errno(r.root.Rename(name(from), name(to)))
}

// Rmdir implements experimentalsys.FS.
func (r *rootFS) Rmdir(p string) experimentalsys.Errno {
	info, err := r.root.Lstat(name(p))
	if err != nil {
		return errno(err)
	}
	if !info.IsDir() {
		return experimentalsys.ENOTDIR
	}
	return errno(r.root.Remove(name(p)))
}

// Unlink implements experimentalsys.FS.
func (r *rootFS) Unlink(p string) experimentalsys.Errno {
	info, err := r.root.Lstat(name(p))
	if err != nil {
		return errno(err)
	}
	if info.IsDir() {
		return experimentalsys.EISDIR
	}
	return errno(r.root.Remove(name(p)))
}

// Link implements experimentalsys.FS.
func (r *rootFS) Link(oldPath, newPath string) experimentalsys.Errno {
	return errno(r.root.Link(name(oldPath), name(newPath)))
}

// Symlink implements experimentalsys.FS. The target must stay inside the
// run directory as written: an absolute target, or one whose ".." climb
// above the run directory from the link's folder, is refused (EPERM), so
// the module plants no link for a tool on the host to follow.
func (r *rootFS) Symlink(target, link string) experimentalsys.Errno {
	if target == "" || path.IsAbs(target) {
		return experimentalsys.EPERM
	}
	if rel := path.Join(path.Dir(name(link)), target); rel == ".." || strings.HasPrefix(rel, "../") {
		return experimentalsys.EPERM
	}
	return errno(r.root.Symlink(target, name(link)))
}

// Utimens implements experimentalsys.FS; it follows a link in the last
// component as long as it stays inside.
func (r *rootFS) Utimens(p string, atim, mtim int64) experimentalsys.Errno {
	at, mt := utimeTime(atim), utimeTime(mtim)
	if at.IsZero() && mt.IsZero() {
		if _, err := r.root.Stat(name(p)); err != nil {
			return errno(err)
		}
		return 0
	}
	return errno(r.root.Chtimes(name(p), at, mt))
}

// utimeTime turns a WASI time (ns, or UTIME_NOW/UTIME_OMIT) into the
// time.Time os.Root.Chtimes wants; the zero time leaves it unchanged.
func utimeTime(ns int64) time.Time {
	if ns == experimentalsys.UTIME_OMIT {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// rootFile is a regular file or folder rootFS opened.
type rootFile struct {
	experimentalsys.UnimplementedFile
	f      *os.File
	append bool
}

func (r *rootFile) stat() (sys.Stat_t, experimentalsys.Errno) {
	info, err := r.f.Stat()
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(info), 0
}

// Dev implements experimentalsys.File.
func (r *rootFile) Dev() (uint64, experimentalsys.Errno) {
	st, e := r.stat()
	return st.Dev, e
}

// Ino implements experimentalsys.File.
func (r *rootFile) Ino() (sys.Inode, experimentalsys.Errno) {
	st, e := r.stat()
	return st.Ino, e
}

// IsDir implements experimentalsys.File.
func (r *rootFile) IsDir() (bool, experimentalsys.Errno) {
	st, e := r.stat()
	return st.Mode.IsDir(), e
}

// IsAppend implements experimentalsys.File.
func (r *rootFile) IsAppend() bool { return r.append }

// SetAppend implements experimentalsys.File with fcntl on the open file,
// never a re-open by path.
func (r *rootFile) SetAppend(enable bool) experimentalsys.Errno {
	raw, err := r.f.SyscallConn()
	if err != nil {
		return errno(err)
	}
	var ferr error
	if err := raw.Control(func(fd uintptr) {
		var flags int
		if flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0); ferr != nil {
			return
		}
		if enable {
			flags |= unix.O_APPEND
		} else {
			flags &^= unix.O_APPEND
		}
		_, ferr = unix.FcntlInt(fd, unix.F_SETFL, flags)
	}); err != nil {
		return errno(err)
	}
	if ferr != nil {
		return errno(ferr)
	}
	r.append = enable
	return 0
}

// Stat implements experimentalsys.File.
func (r *rootFile) Stat() (sys.Stat_t, experimentalsys.Errno) { return r.stat() }

// Read implements experimentalsys.File.
func (r *rootFile) Read(buf []byte) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := r.f.Read(buf)
	return n, ioErrno(err)
}

// Pread implements experimentalsys.File.
func (r *rootFile) Pread(buf []byte, off int64) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := r.f.ReadAt(buf, off)
	return n, ioErrno(err)
}

// Seek implements experimentalsys.File; on a folder, seeking to 0 rewinds
// its listing.
func (r *rootFile) Seek(offset int64, whence int) (int64, experimentalsys.Errno) {
	n, err := r.f.Seek(offset, whence)
	return n, errno(err)
}

// Readdir implements experimentalsys.File. Each entry's inode is read with
// fstatat relative to the open folder, never by path from the host's root.
func (r *rootFile) Readdir(n int) ([]experimentalsys.Dirent, experimentalsys.Errno) {
	entries, err := r.f.ReadDir(n)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, errno(err)
	}
	raw, cerr := r.f.SyscallConn()
	if cerr != nil {
		return nil, errno(cerr)
	}
	dirents := make([]experimentalsys.Dirent, 0, len(entries))
	for _, e := range entries {
		d := experimentalsys.Dirent{Name: e.Name(), Type: e.Type()}
		raw.Control(func(fd uintptr) {
			var st unix.Stat_t
			if unix.Fstatat(int(fd), e.Name(), &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
				d.Ino = st.Ino
			}
		})
		dirents = append(dirents, d)
	}
	return dirents, 0
}

// Write implements experimentalsys.File.
func (r *rootFile) Write(buf []byte) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := r.f.Write(buf)
	return n, errno(err)
}

// Pwrite implements experimentalsys.File.
func (r *rootFile) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	if r.append {
		return 0, experimentalsys.EINVAL // as os.File: positioned writes and O_APPEND do not mix
	}
	n, err := r.f.WriteAt(buf, off)
	return n, errno(err)
}

// Truncate implements experimentalsys.File.
func (r *rootFile) Truncate(size int64) experimentalsys.Errno {
	if size < 0 {
		return experimentalsys.EINVAL
	}
	return errno(r.f.Truncate(size))
}

// Sync implements experimentalsys.File.
func (r *rootFile) Sync() experimentalsys.Errno { return errno(r.f.Sync()) }

// Datasync implements experimentalsys.File.
func (r *rootFile) Datasync() experimentalsys.Errno { return errno(r.f.Sync()) }

// Close implements experimentalsys.File.
func (r *rootFile) Close() experimentalsys.Errno { return errno(r.f.Close()) }

// ioErrno is errno, with the end of a file not an error.
func ioErrno(err error) experimentalsys.Errno {
	if errors.Is(err, io.EOF) {
		return 0
	}
	return errno(err)
}
