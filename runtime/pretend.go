package runtime

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"golang.org/x/sys/unix"
)

// A replay pretends the module's changes to the run directory: each is
// checked and answered as a run would answer it (a change in the records
// folder is refused, a file made in a folder that is not there is ENOENT,
// O_EXCL on a file that is there is EEXIST, ...), and none is made. What
// the module made, removed or renamed is remembered in an overlay, so that
// a sequence of changes (write a temporary file, rename it into place;
// make a folder, remove it) is answered as in the run. Reads see the run
// directory as it is: a file the module wrote reads as the run left it.

// overlay is the names a replay's module made and removed, as cleaned
// paths relative to the run directory.
type overlay struct {
	made    map[string]bool // made (files and links: false; folders: true)
	removed map[string]bool
}

func (o *overlay) init() {
	if o.made == nil {
		o.made, o.removed = map[string]bool{}, map[string]bool{}
	}
}

// key is the overlay's name for a path of the module.
func key(p string) string { return path.Clean(name(p)) }

// exists reports whether n is there for the module, and whether it is a
// folder.
func (r *rootFS) exists(n string) (there, folder bool) {
	r.overlay.init()
	if r.overlay.removed[n] {
		return false, false
	}
	if isDir, ok := r.overlay.made[n]; ok {
		return true, isDir
	}
	info, err := r.root.Lstat(n)
	if err != nil {
		return false, false
	}
	return true, info.IsDir()
}

// pretendCheck answers a change of p as a run would before making it: the
// records folder is refused (EACCES), a folder on the way that is not there
// is ENOENT.
func (r *rootFS) pretendCheck(p string) experimentalsys.Errno {
	n := key(p)
	if r.records != (fileID{}) && (n == ".wflow" || strings.HasPrefix(n, ".wflow/")) {
		return experimentalsys.EACCES
	}
	parent := path.Dir(n)
	if there, folder := r.exists(parent); parent != "." && (!there || !folder) {
		if !there {
			return experimentalsys.ENOENT
		}
		return experimentalsys.ENOTDIR
	}
	if _, made := r.overlay.made[parent]; made {
		return 0 // a folder of the replay's: nothing of the run's to check
	}
	d, e := r.lookup(n, true) // the run's checks on the real folder: the records folder however reached
	if e == 0 {
		d.f.Close()
	}
	if e == experimentalsys.ENOENT && !r.overlay.removed[parent] {
		return 0 // the parent was made by the replay in a folder it removed meanwhile
	}
	return e
}

// pretendMake answers making p (a folder when folder).
func (r *rootFS) pretendMake(p string, folder bool) experimentalsys.Errno {
	if e := r.pretendCheck(p); e != 0 {
		return e
	}
	n := key(p)
	if there, _ := r.exists(n); there {
		return experimentalsys.EEXIST
	}
	delete(r.overlay.removed, n)
	r.overlay.made[n] = folder
	return 0
}

// pretendChange answers a change of p that keeps its name (chmod, times).
func (r *rootFS) pretendChange(p string) experimentalsys.Errno {
	if e := r.pretendCheck(p); e != 0 {
		return e
	}
	if there, _ := r.exists(key(p)); !there {
		return experimentalsys.ENOENT
	}
	return 0
}

// pretendRemove answers removing p: a folder with rmdir (folder), else a
// file or link with unlink.
func (r *rootFS) pretendRemove(p string, folder bool) experimentalsys.Errno {
	if e := r.pretendCheck(p); e != 0 {
		return e
	}
	n := key(p)
	there, isDir := r.exists(n)
	switch {
	case !there:
		return experimentalsys.ENOENT
	case folder && !isDir:
		return experimentalsys.ENOTDIR
	case !folder && isDir:
		return experimentalsys.EISDIR
	}
	delete(r.overlay.made, n)
	r.overlay.removed[n] = true
	return 0
}

// pretendRename answers renaming from to to.
func (r *rootFS) pretendRename(from, to string) experimentalsys.Errno {
	if e := r.pretendCheck(from); e != 0 {
		return e
	}
	if e := r.pretendCheck(to); e != 0 {
		return e
	}
	f, t := key(from), key(to)
	there, isDir := r.exists(f)
	if !there {
		return experimentalsys.ENOENT
	}
	if toThere, toDir := r.exists(t); toThere && toDir != isDir {
		if toDir {
			return experimentalsys.EISDIR
		}
		return experimentalsys.ENOTDIR
	}
	delete(r.overlay.made, f)
	r.overlay.removed[f] = true
	delete(r.overlay.removed, t)
	r.overlay.made[t] = isDir
	return 0
}

// pretendOpen opens n for a change: checked as a run would (records
// folder, missing folder, O_CREAT|O_EXCL, a folder opened to write,
// O_NOFOLLOW on a link); reads see the file as it is (none for a file the
// open makes or truncates, or that the replay made), writes are dropped.
func (r *rootFS) pretendOpen(n string, osflag int) (experimentalsys.File, experimentalsys.Errno) {
	if e := r.pretendCheck(n); e != 0 {
		return nil, e
	}
	k := key(n)
	there, isDir := r.exists(k)
	_, made := r.overlay.made[k]
	create, excl := osflag&unix.O_CREAT != 0, osflag&unix.O_EXCL != 0
	switch {
	case there && create && excl:
		return nil, experimentalsys.EEXIST
	case there && isDir:
		return nil, experimentalsys.EISDIR // opened to change: a folder never is
	case !there && !create:
		return nil, experimentalsys.ENOENT
	}
	if there && !made && osflag&unix.O_NOFOLLOW != 0 {
		if info, err := r.root.Lstat(k); err == nil && info.Mode()&fs.ModeSymlink != 0 {
			return nil, experimentalsys.ELOOP
		}
	}
	var f *os.File
	var err error
	if there && !made && osflag&unix.O_TRUNC == 0 {
		f, err = r.root.OpenFile(k, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err == nil {
			if info, serr := f.Stat(); serr != nil || !info.Mode().IsRegular() {
				f.Close()
				return nil, experimentalsys.EACCES // a FIFO, socket or device: never opened for the module
			}
		}
	} else {
		if f, err = os.CreateTemp("", "wflow-pretend-*"); err == nil {
			os.Remove(f.Name())
		}
		if !there {
			delete(r.overlay.removed, k)
			r.overlay.made[k] = false
		}
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, experimentalsys.ENOENT
		}
		return nil, errno(err)
	}
	return &rootFile{f: f, append: osflag&unix.O_APPEND != 0, discard: true}, 0
}
