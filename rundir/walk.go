package rundir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
)

// Entry is one thing Walk found in the run directory.
type Entry struct {
	Path string      // slash-separated, relative to the root; the walked path itself first
	Type fs.FileMode // type bits only: 0 for a regular file, fs.ModeDir, fs.ModeSymlink, ...
	Link string      // a symbolic link's target (never followed)
}

// WalkLimits caps the shape of what Walk visits: steps can make folders
// nest thousands deep or hold millions of empty files.
type WalkLimits struct {
	Depth   int // folders below the walked path; 0 means only its direct entries
	Entries int // files, folders and links visited in all
}

// Walk visits rel in root and, when it is a folder, everything beneath it,
// each folder's entries in name order, calling fn for every entry. A
// regular file comes with f, opened for reading (non-blocking, checked to be
// a regular file after it was opened, closed when fn returns); anything
// else comes with f nil. Folders are visited before their entries and
// opened with O_DIRECTORY|O_NONBLOCK, links are reported with their target
// and never followed, so something a step swapped in since the listing (a
// FIFO, a link out) is an error or an entry, never a wait or a way out.
// Everything stays inside root: rel itself is followed when it is a link
// (as find -H does), and a link swapped in for a file after the listing is
// resolved by os.Root, inside root. Walk stops at fn's first error and returns it.
func Walk(root *os.Root, rel string, lim WalkLimits, fn func(e Entry, f *os.File) error) error {
	rel = path.Clean(strings.TrimPrefix(rel, "./"))
	info, err := root.Stat(rel) // rel itself may be a link, as find -H follows it
	if err != nil {
		return Explain(rel, err)
	}
	w := walker{root: root, lim: lim, left: lim.Entries}
	return w.visit(rel, info.Mode().Type(), 0, fn)
}

type walker struct {
	root *os.Root
	lim  WalkLimits
	left int
}

func (w *walker) visit(p string, typ fs.FileMode, depth int, fn func(Entry, *os.File) error) error {
	switch {
	case typ == 0:
		return w.file(p, fn)
	case typ == fs.ModeSymlink:
		target, err := w.root.Readlink(p)
		if err != nil {
			return err
		}
		return fn(Entry{Path: p, Type: typ, Link: target}, nil)
	case typ != fs.ModeDir:
		return fn(Entry{Path: p, Type: typ}, nil)
	}
	if err := fn(Entry{Path: p, Type: fs.ModeDir}, nil); err != nil {
		return err
	}
	if depth > w.lim.Depth {
		return fmt.Errorf("%s: folders nest deeper than %d", p, w.lim.Depth)
	}
	entries, err := w.list(p)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := w.visit(path.Join(p, e.Name()), e.Type(), depth+1, fn); err != nil {
			return err
		}
	}
	return nil
}

// list reads the folder p in chunks, counting against the entry cap: a
// folder of a million entries stops at the cap, not in memory.
func (w *walker) list(p string) ([]fs.DirEntry, error) {
	d, err := w.root.OpenFile(p, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, Explain(p, err)
	}
	defer d.Close()
	var entries []fs.DirEntry
	for {
		chunk, err := d.ReadDir(256)
		entries = append(entries, chunk...)
		if w.left -= len(chunk); w.left < 0 {
			return nil, fmt.Errorf("%s: more than %d files and folders", p, w.lim.Entries)
		}
		if err == io.EOF || len(chunk) == 0 {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, nil
}

func (w *walker) file(p string, fn func(Entry, *os.File) error) error {
	f, err := OpenRegular(w.root, p)
	if err != nil {
		return err
	}
	defer f.Close()
	return fn(Entry{Path: p}, f)
}

// OpenRegular opens name in root for reading, non-blocking, and returns it
// only when it is a regular file: a FIFO, device or socket left in its
// place is closed and refused with ErrNotRegular before anything is read.
func OpenRegular(root *os.Root, name string) (*os.File, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, Explain(name, err)
	}
	if err := regular(f, name); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ErrTooLarge is wrapped by ReadAll and ReadFile for a file over their cap.
var ErrTooLarge = errors.New("file too large")

// ReadAll reads f to its end, refusing more than max bytes with an error
// wrapping ErrTooLarge.
func ReadAll(f *os.File, name string, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: over %d bytes: %w", name, max, ErrTooLarge)
	}
	return b, nil
}

// LeadsOut reports whether err is os.Root's refusal of a path that would
// leave the root (through ".." or a symbolic link). os.Root does not export
// that error; it is the only one it returns that is none of an errno and
// the fs package's errors.
func LeadsOut(err error) bool {
	if err == nil {
		return false
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
	return !errors.As(inner, &en) && !errors.Is(inner, fs.ErrNotExist) && !errors.Is(inner, fs.ErrExist) &&
		!errors.Is(inner, fs.ErrPermission) && !errors.Is(inner, fs.ErrClosed) && !errors.Is(inner, fs.ErrInvalid) &&
		!errors.Is(inner, ErrNotRegular)
}

// Explain turns os.Root's refusal of a path that leads out into an error
// that says so; other errors pass as they are.
func Explain(rel string, err error) error {
	if LeadsOut(err) {
		return fmt.Errorf("%s lies outside the run directory (a symbolic link leads out)", rel)
	}
	return err
}
