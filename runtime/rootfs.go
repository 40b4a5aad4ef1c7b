package runtime

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
	"github.com/wflow/wflow/rundir"
	"golang.org/x/sys/unix"
)

// rootFS is the run directory as the module sees it, built wholly on
// os.Root: every path the module names is resolved beneath the run
// directory by the kernel's openat family, one component at a time, so a
// symbolic link a step plants (`planted -> /etc`, or a folder swapped for a
// link while the module works) can never lead outside it, and no path is
// checked first and opened again.
//
// A name is looked up in its folder, which os.Root opened: the last
// component is opened (or made, renamed, removed) relative to that folder's
// descriptor with O_NOFOLLOW, and a link there is followed by rootFS itself,
// one hop at a time, each hop resolved the same way. Only regular files and
// folders can be opened: every open is non-blocking and a FIFO, socket or
// device is closed and refused (EACCES) before the module can read or write
// it, so a FIFO cannot hang the run.
//
// The records folder (rundir.Records, when the run has one) may be read
// but not changed: a change whose folder is the records folder or lies in
// it, or that names the records folder itself, is refused (EACCES), however
// the path reached it. docs/security.md lists what it guarantees.
type rootFS struct {
	experimentalsys.UnimplementedFS
	root    *os.Root
	rootID  fileID // the run directory
	records fileID // the records folder; zero when there is none
	discard bool   // every change is pretended: answered, never made (a replay; pretend.go)
	overlay overlay
}

// fileID names a file on the host: device and inode.
type fileID struct{ dev, ino uint64 }

// maxHops caps the symbolic links followed in one lookup, as the kernel's
// ELOOP does (40).
const maxHops = 40

// newRootFS opens dir for the module; records, when not "", is a folder of
// dir the module may read but not change. With discard, every change the
// module makes succeeds and changes nothing (pretend).
func newRootFS(dir, records string, discard bool) (*rootFS, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	r := &rootFS{root: root, discard: discard}
	if r.rootID, err = statID(root, "."); err != nil {
		root.Close()
		return nil, err
	}
	if records != "" {
		info, err := root.Lstat(records)
		switch {
		case err == nil && info.IsDir():
			r.records, _ = statID(root, records)
		case err == nil:
			root.Close()
			return nil, fmt.Errorf("%s in the run directory is not a folder", records)
		}
	}
	return r, nil
}

func statID(root *os.Root, name string) (fileID, error) {
	info, err := root.Lstat(name)
	if err != nil {
		return fileID{}, err
	}
	st := info.Sys().(*syscall.Stat_t)
	return fileID{uint64(st.Dev), st.Ino}, nil
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
// refuses a path that would leave the root with an error that is no errno
// (rundir.LeadsOut); the guest sees EACCES, like any other refusal here.
func errno(err error) experimentalsys.Errno {
	if err == nil {
		return 0
	}
	if rundir.LeadsOut(err) {
		return experimentalsys.EACCES
	}
	return experimentalsys.UnwrapOSError(err)
}

// dir is the folder of a name, opened through os.Root, and the name's last
// component in it.
type dir struct {
	f    *os.File
	base string
}

func (d dir) fd() int { return int(d.f.Fd()) }

// lookup opens the folder of n (a name from name()). With change, it
// refuses (EACCES) a folder that is the records folder or lies in it, and a
// last component that is the records folder itself.
func (r *rootFS) lookup(n string, change bool) (dir, experimentalsys.Errno) {
	folder, base := path.Split(path.Clean(n))
	if folder == "" {
		folder = "."
	}
	// O_DIRECTORY and O_NONBLOCK: a FIFO swapped in for the folder is
	// refused, not opened (an open of a FIFO waits for a writer).
	f, err := r.root.OpenFile(folder, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NONBLOCK, 0)
	if err != nil {
		return dir{}, errno(err)
	}
	d := dir{f: f, base: base}
	if change && r.records != (fileID{}) {
		if r.inRecords(d.fd()) || r.isRecords(d.fd(), base) {
			f.Close()
			return dir{}, experimentalsys.EACCES
		}
	}
	return d, 0
}

// isRecords reports whether base in the folder fd is the records folder.
func (r *rootFS) isRecords(fd int, base string) bool {
	var st unix.Stat_t
	return unix.Fstatat(fd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && (fileID{st.Dev, st.Ino}) == r.records
}

// inRecords reports whether the folder fd is the records folder or lies in
// it. Neither the module nor a step can move a folder into or out of the
// records folder, so the answer holds. A walk that does not reach the run
// directory counts as inside.
func (r *rootFS) inRecords(fd int) bool {
	_, in, ok := r.climb(fd)
	return in || !ok
}

// climb walks up from the folder fd through ".." to the run directory and
// returns how many levels below it the folder is and whether the walk met
// the records folder; ok is false when it did not reach the run directory.
func (r *rootFS) climb(fd int) (depth int, inRecords, ok bool) {
	cur := fd
	defer func() {
		if cur != fd {
			unix.Close(cur)
		}
	}()
	for ; depth < 4096; depth++ {
		var st unix.Stat_t
		if unix.Fstat(cur, &st) != nil {
			return depth, inRecords, false
		}
		switch id := (fileID{st.Dev, st.Ino}); {
		case id == r.rootID:
			return depth, inRecords, true
		case id == r.records && r.records != (fileID{}):
			inRecords = true
		}
		up, err := unix.Openat(cur, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return depth, inRecords, false
		}
		if cur != fd {
			unix.Close(cur)
		}
		cur = up
	}
	return depth, inRecords, false
}

// follow returns the name a symbolic link base in d leads to, relative to
// the run directory, or EACCES when it leads out.
func follow(d dir, n string) (string, experimentalsys.Errno) {
	target, err := readlinkat(d.fd(), d.base)
	if err != nil {
		return "", errno(err)
	}
	if path.IsAbs(target) {
		return "", experimentalsys.EACCES
	}
	next := path.Join(path.Dir(path.Clean(n)), target)
	if next == ".." || strings.HasPrefix(next, "../") {
		return "", experimentalsys.EACCES
	}
	return next, 0
}

func readlinkat(fd int, base string) (string, error) {
	for size := 256; size <= 1<<16; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, base, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
	return "", syscall.ENAMETOOLONG
}

// resolve finds the last non-link of n for a change that follows links
// (chmod, utimens): the folder and name of the file a link in the last
// component leads to, hop by hop.
func (r *rootFS) resolve(n string, change bool) (dir, experimentalsys.Errno) {
	for hop := 0; ; hop++ {
		d, e := r.lookup(n, change)
		if e != 0 {
			return d, e
		}
		var st unix.Stat_t
		if err := unix.Fstatat(d.fd(), d.base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK {
			return d, 0 // not a link (or not there: the caller's call says so)
		}
		if hop == maxHops {
			d.f.Close()
			return dir{}, experimentalsys.ELOOP
		}
		next, e := follow(d, n)
		d.f.Close()
		if e != 0 {
			return dir{}, e
		}
		n = next
	}
}

// OpenFile opens path beneath the run directory. O_NOFOLLOW refuses a
// symbolic link in the last component (ELOOP), as POSIX says; other links
// are followed as long as they stay inside. An open that may change the
// file (write, create, truncate, append) is refused in the records folder.
func (r *rootFS) OpenFile(p string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	osflag := unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOFOLLOW
	switch flag & (experimentalsys.O_RDONLY | experimentalsys.O_WRONLY | experimentalsys.O_RDWR) {
	case experimentalsys.O_WRONLY:
		osflag |= unix.O_WRONLY
	case experimentalsys.O_RDWR:
		osflag |= unix.O_RDWR
	}
	for _, f := range []struct {
		wasi experimentalsys.Oflag
		os   int
	}{
		{experimentalsys.O_APPEND, unix.O_APPEND},
		{experimentalsys.O_CREAT, unix.O_CREAT},
		{experimentalsys.O_EXCL, unix.O_EXCL},
		{experimentalsys.O_TRUNC, unix.O_TRUNC},
		{experimentalsys.O_DIRECTORY, unix.O_DIRECTORY},
		{experimentalsys.O_SYNC, unix.O_SYNC},
		{experimentalsys.O_DSYNC, unix.O_DSYNC},
	} {
		if flag&f.wasi != 0 {
			osflag |= f.os
		}
	}
	if strings.HasSuffix(p, "/") {
		osflag |= unix.O_DIRECTORY // "name/" must be a folder
	}
	trunc := osflag&unix.O_TRUNC != 0
	if trunc && osflag&(unix.O_WRONLY|unix.O_RDWR) == 0 {
		return nil, experimentalsys.EINVAL // truncating needs write access, as in POSIX
	}
	osflag &^= unix.O_TRUNC // held back until the file is known to be a regular file
	change := osflag&(unix.O_WRONLY|unix.O_RDWR|unix.O_CREAT|unix.O_APPEND) != 0 || trunc
	n := name(p)
	if change && r.discard {
		return r.pretendOpen(n, osflag)
	}
	for hop := 0; ; hop++ {
		d, e := r.lookup(n, change)
		if e != 0 {
			return nil, e
		}
		fd, err := unix.Openat(d.fd(), d.base, osflag, uint32(perm.Perm()))
		if err == unix.ELOOP && flag&experimentalsys.O_NOFOLLOW == 0 && hop < maxHops {
			next, e := follow(d, n)
			d.f.Close()
			if e != 0 {
				return nil, e
			}
			n = next
			continue
		}
		d.f.Close()
		if err != nil {
			return nil, errno(err)
		}
		f := os.NewFile(uintptr(fd), n)
		info, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, errno(err)
		}
		if !info.Mode().IsRegular() && !info.IsDir() {
			f.Close()
			return nil, experimentalsys.EACCES // a FIFO, socket or device: never opened for the module
		}
		if trunc && info.Mode().IsRegular() {
			if err := f.Truncate(0); err != nil {
				f.Close()
				return nil, errno(err)
			}
		}
		return &rootFile{f: f, append: flag&experimentalsys.O_APPEND != 0}, 0
	}
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
	if r.discard {
		return r.pretendMake(p, true)
	}
	d, e := r.lookup(name(p), true)
	if e != 0 {
		return e
	}
	defer d.f.Close()
	return errno(unix.Mkdirat(d.fd(), d.base, uint32(perm.Perm())))
}

// Chmod implements experimentalsys.FS. Only permission bits: a module never
// makes a setuid file. It follows links, as chmod does, and changes the file
// through a descriptor, so a link swapped in at the last moment is not
// followed out.
func (r *rootFS) Chmod(p string, perm fs.FileMode) experimentalsys.Errno {
	if r.discard {
		return r.pretendChange(p)
	}
	d, e := r.resolve(name(p), true)
	if e != 0 {
		return e
	}
	defer d.f.Close()
	fd, err := unix.Openat(d.fd(), d.base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return errno(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return errno(err)
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG && t != unix.S_IFDIR {
		return experimentalsys.EACCES
	}
	return errno(unix.Fchmod(fd, uint32(perm.Perm())))
}

// Rename implements experimentalsys.FS.
func (r *rootFS) Rename(from, to string) experimentalsys.Errno {
	if r.discard {
		return r.pretendRename(from, to)
	}
	src, e := r.lookup(name(from), true)
	if e != 0 {
		return e
	}
	defer src.f.Close()
	dst, e := r.lookup(name(to), true)
	if e != 0 {
		return e
	}
	defer dst.f.Close()
	return errno(unix.Renameat(src.fd(), src.base, dst.fd(), dst.base))
}

// Rmdir implements experimentalsys.FS.
func (r *rootFS) Rmdir(p string) experimentalsys.Errno {
	if r.discard {
		return r.pretendRemove(p, true)
	}
	d, e := r.lookup(name(p), true)
	if e != 0 {
		return e
	}
	defer d.f.Close()
	return errno(unix.Unlinkat(d.fd(), d.base, unix.AT_REMOVEDIR))
}

// Unlink implements experimentalsys.FS.
func (r *rootFS) Unlink(p string) experimentalsys.Errno {
	if r.discard {
		return r.pretendRemove(p, false)
	}
	d, e := r.lookup(name(p), true)
	if e != 0 {
		return e
	}
	defer d.f.Close()
	err := unix.Unlinkat(d.fd(), d.base, 0)
	if err == unix.EISDIR || err == unix.EPERM && r.isDir(d) {
		return experimentalsys.EISDIR
	}
	return errno(err)
}

func (r *rootFS) isDir(d dir) bool {
	var st unix.Stat_t
	return unix.Fstatat(d.fd(), d.base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// Link implements experimentalsys.FS. Neither name may be in the records
// folder: a second name for a record outside it would let the module write
// the record through that name.
func (r *rootFS) Link(oldPath, newPath string) experimentalsys.Errno {
	if r.discard {
		if e := r.pretendChange(oldPath); e != 0 {
			return e
		}
		return r.pretendMake(newPath, false)
	}
	src, e := r.lookup(name(oldPath), true)
	if e != 0 {
		return e
	}
	defer src.f.Close()
	dst, e := r.lookup(name(newPath), true)
	if e != 0 {
		return e
	}
	defer dst.f.Close()
	return errno(unix.Linkat(src.fd(), src.base, dst.fd(), dst.base, 0))
}

// Symlink implements experimentalsys.FS. An absolute target, or one whose
// ".." climb above the run directory from the folder the link is made in
// (its real place, however the path reached it), is refused (EPERM). A
// target that passes through other links is not resolved, so a link can
// still lead out by way of another; wflow never follows one out, and
// docs/security.md says so.
func (r *rootFS) Symlink(target, link string) experimentalsys.Errno {
	if target == "" || path.IsAbs(target) {
		return experimentalsys.EPERM
	}
	if r.discard {
		if e := r.pretendCheck(link); e != 0 {
			return e
		}
	}
	d, e := r.lookup(name(link), true)
	if e != 0 && !(r.discard && e == experimentalsys.ENOENT) {
		return e
	}
	if e == 0 {
		defer d.f.Close()
	}
	if r.discard && e != 0 {
		return r.pretendMake(link, false) // its folder is one the replay made: no climb to check
	}
	depth, _, ok := r.climb(d.fd())
	if !ok {
		return experimentalsys.EACCES
	}
	for _, c := range strings.Split(path.Clean(target), "/") {
		switch c {
		case "..":
			if depth--; depth < 0 {
				return experimentalsys.EPERM
			}
		case ".":
		default:
			depth++
		}
	}
	if r.discard {
		return r.pretendMake(link, false)
	}
	return errno(unix.Symlinkat(target, d.fd(), d.base))
}

// Utimens implements experimentalsys.FS; it follows a link in the last
// component as long as it stays inside, and sets the times without
// following a link swapped in at the last moment.
func (r *rootFS) Utimens(p string, atim, mtim int64) experimentalsys.Errno {
	if r.discard {
		return r.pretendChange(p)
	}
	d, e := r.resolve(name(p), true)
	if e != 0 {
		return e
	}
	defer d.f.Close()
	ts := []unix.Timespec{utimeSpec(atim), utimeSpec(mtim)}
	return errno(unix.UtimesNanoAt(d.fd(), d.base, ts, unix.AT_SYMLINK_NOFOLLOW))
}

// utimeSpec turns a WASI time (ns, or UTIME_OMIT) into a timespec.
func utimeSpec(ns int64) unix.Timespec {
	if ns == experimentalsys.UTIME_OMIT {
		return unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(ns)
}

// rootFile is a regular file or folder rootFS opened.
type rootFile struct {
	experimentalsys.UnimplementedFile
	f       *os.File
	append  bool
	discard bool // writes are accepted and dropped (rootFS.discard)
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
	if len(buf) == 0 || r.discard {
		return len(buf), 0
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
	if r.discard {
		return len(buf), 0
	}
	n, err := r.f.WriteAt(buf, off)
	return n, errno(err)
}

// Truncate implements experimentalsys.File.
func (r *rootFile) Truncate(size int64) experimentalsys.Errno {
	if size < 0 {
		return experimentalsys.EINVAL
	}
	if r.discard {
		return 0
	}
	return errno(r.f.Truncate(size))
}

// Sync implements experimentalsys.File.
func (r *rootFile) Sync() experimentalsys.Errno {
	if r.discard {
		return 0
	}
	return errno(r.f.Sync())
}

// Datasync implements experimentalsys.File.
func (r *rootFile) Datasync() experimentalsys.Errno { return r.Sync() }

// Close implements experimentalsys.File.
func (r *rootFile) Close() experimentalsys.Errno { return errno(r.f.Close()) }

// ioErrno is errno, with the end of a file not an error.
func ioErrno(err error) experimentalsys.Errno {
	if errors.Is(err, io.EOF) {
		return 0
	}
	return errno(err)
}
