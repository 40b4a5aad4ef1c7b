package stepcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/step"
)

// Store is the step cache on disk, shared by every run of the user:
//
//	lock                   flock: shared while a run stores or restores, exclusive while pruning
//	entries/<hex>.json     one Entry per key (the key's hex digits)
//	blobs/<hh>/<hex>       file contents by their SHA-256, shared by entries
//	names/<step>.json      the last entry stored for a step name, for explaining misses
//	tmp/                   files being written
//
// Every file is written to tmp/, synced, then renamed into place, so a
// crash leaves whole files or none; an entry is renamed into place only
// after its blobs, so an entry never names a blob that was never written.
type Store struct {
	Dir string
}

// Entry is one stored step: its key and parts, the result it ended with and
// what its outputs and streams held.
type Entry struct {
	Version int             `json:"v"`
	Key     string          `json:"key"`
	Step    string          `json:"step"` // the name of the step that stored it
	RunID   string          `json:"run_id"`
	Created time.Time       `json:"created"`
	Parts   Parts           `json:"parts"`
	Result  step.ExecResult `json:"result"`
	Stdout  string          `json:"stdout,omitempty"` // the whole stdout's blob
	Stderr  string          `json:"stderr,omitempty"`
	Outputs []File          `json:"outputs"` // each declared output, then what is beneath it
	Size    int64           `json:"size"`    // bytes of the blobs it names
}

// named is what names/<step>.json holds.
type named struct {
	Key     string    `json:"key"`
	RunID   string    `json:"run_id"`
	Created time.Time `json:"created"`
	Parts   Parts     `json:"parts"`
}

// maxEntry caps what is read of one entry file: a key lists every file of
// its inputs, at most a million.
const maxEntry = 1 << 30

// Open makes the store's folders (mode 0700: outputs may be private) and
// returns the store.
func Open(dir string) (*Store, error) {
	for _, d := range []string{"entries", "blobs", "names", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("step cache: %w", err)
		}
	}
	return &Store{Dir: dir}, nil
}

// lock takes the store's lock, shared or exclusive, and returns its release.
func (s *Store) lock(how int) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.Dir, "lock"), os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

func hexOf(digest string) (string, error) {
	h := strings.TrimPrefix(digest, "sha256:")
	if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" || h == digest {
		return "", fmt.Errorf("%q is not a sha256 digest", digest)
	}
	return h, nil
}

func (s *Store) entryPath(key string) (string, error) {
	h, err := hexOf(key)
	return filepath.Join(s.Dir, "entries", h+".json"), err
}

func (s *Store) blobPath(digest string) (string, error) {
	h, err := hexOf(digest)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.Dir, "blobs", h[:2], h), nil
}

// Get reads the entry of key; an error wrapping fs.ErrNotExist when there
// is none.
func (s *Store) Get(key string) (*Entry, error) {
	p, err := s.entryPath(key)
	if err != nil {
		return nil, err
	}
	var e Entry
	if err := readJSON(p, &e); err != nil {
		return nil, err
	}
	if e.Key != key || e.Version != KeyVersion {
		return nil, fmt.Errorf("entry %s: %w (written for another key or format)", key, fs.ErrNotExist)
	}
	return &e, nil
}

// last reads the last entry stored for a step name, or nil.
func (s *Store) last(name string) *named {
	var n named
	if readJSON(filepath.Join(s.Dir, "names", name+".json"), &n) != nil {
		return nil
	}
	return &n
}

func readJSON(p string, v any) error {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxEntry+1))
	if err != nil {
		return err
	}
	if len(b) > maxEntry {
		return fmt.Errorf("%s: over %d bytes", p, maxEntry)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// writeFile writes b (or what r holds) to p: into tmp/, synced, renamed.
func (s *Store) writeFile(p string, r io.Reader, perm fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Join(s.Dir, "tmp"), "w-*")
	if err != nil {
		return err
	}
	_, werr := io.Copy(f, r)
	if werr == nil {
		werr = f.Chmod(perm)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), p); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// putBlob stores what r holds under digest, unless the store has it. What
// r holds is hashed as it is copied: content that no longer matches digest
// (a step still writing its output) is an error, never a wrong blob.
func (s *Store) putBlob(digest string, r io.Reader) error {
	p, err := s.blobPath(digest)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(p); err == nil {
		return nil
	}
	h := sha256.New()
	if err := s.writeFile(p, io.TeeReader(r, h), 0o400); err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		os.Remove(p)
		return fmt.Errorf("the file changed while it was stored")
	}
	return nil
}

// Put stores e with the content of its outputs (the step's declared
// outputs, read from the run directory root, within one budget for them
// all) and of its streams (files of root, relative to it; "" for none). It
// fills e.Outputs, e.Stdout, e.Stderr and e.Size. An output whose path
// crosses a symbolic link is not stored: a restore will not follow one.
func (s *Store) Put(ctx context.Context, e *Entry, root *os.Root, outputs []string, stdoutFile, stderrFile string) error {
	unlock, err := s.lock(syscall.LOCK_SH)
	if err != nil {
		return err
	}
	defer unlock()
	e.Outputs, e.Size = []File{}, 0
	left := newBudget()
	for _, out := range outputs {
		dir, err := rundir.OpenFolder(root, filepath.Dir(out), false)
		if err != nil {
			return fmt.Errorf("output %s: %w", out, err)
		}
		dir.Close()
		err = walkFiles(ctx, root, out, left, func(f File, file *os.File) error {
			e.Outputs = append(e.Outputs, f)
			if f.Type != "file" {
				return nil
			}
			e.Size += f.Size
			return s.putBlob(f.Digest, ctxReader{ctx, file})
		})
		if err != nil {
			return fmt.Errorf("output %s: %w", out, err)
		}
	}
	for _, st := range []struct {
		file   string
		digest *string
	}{{stdoutFile, &e.Stdout}, {stderrFile, &e.Stderr}} {
		if st.file == "" {
			continue
		}
		err := walkFiles(ctx, root, st.file, newBudget(), func(f File, file *os.File) error {
			if f.Type != "file" {
				return fmt.Errorf("%s is not a file", st.file)
			}
			*st.digest = f.Digest
			e.Size += f.Size
			return s.putBlob(f.Digest, ctxReader{ctx, file})
		})
		if err != nil {
			return err
		}
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	p, err := s.entryPath(e.Key)
	if err != nil {
		return err
	}
	if err := s.writeFile(p, bytes.NewReader(b), 0o600); err != nil {
		return err
	}
	n, _ := json.Marshal(named{Key: e.Key, RunID: e.RunID, Created: e.Created, Parts: e.Parts})
	return s.writeFile(filepath.Join(s.Dir, "names", e.Step+".json"), bytes.NewReader(n), 0o600)
}

// Restore writes e's outputs into the run directory root, and its streams
// to stdoutFile and stderrFile. Each entry is written in its folder opened
// with rundir.OpenFolder, so no link on the way is followed (one a step
// planted, or one the outputs themselves hold): a path lands where its text
// says, never in wflow's records. Files are written to a new name and
// renamed into place, so a link or file there is replaced, never written
// through. It holds the store's shared lock, so that no prune removes a
// blob it is reading. Files in a restored folder that the entry does not
// list stay.
func (s *Store) Restore(e *Entry, root *os.Root, stdoutFile, stderrFile string) error {
	unlock, err := s.lock(syscall.LOCK_SH)
	if err != nil {
		return err
	}
	defer unlock()
	for _, f := range e.Outputs {
		if err := safeRel(f.Path); err != nil {
			return err
		}
		if err := s.restoreOne(root, f); err != nil {
			return fmt.Errorf("restoring %s: %w", f.Path, err)
		}
	}
	for _, st := range []struct{ file, digest string }{{stdoutFile, e.Stdout}, {stderrFile, e.Stderr}} {
		if st.file == "" {
			continue
		}
		if err := s.restoreFile(root, st.file, st.digest, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) restoreOne(root *os.Root, f File) error {
	dir, err := rundir.OpenFolder(root, filepath.Dir(f.Path), true)
	if err != nil {
		return err
	}
	defer dir.Close()
	name := filepath.Base(f.Path)
	switch f.Type {
	case "dir":
		return rundir.MkdirIn(dir, name)
	case "link":
		return rundir.SymlinkIn(dir, name, f.Link)
	case "file":
		perm := fs.FileMode(0o644)
		if f.Exec {
			perm = 0o755
		}
		return s.restoreFile(root, f.Path, f.Digest, perm)
	}
	return fmt.Errorf("unknown type %q", f.Type)
}

// restoreFile writes the blob digest ("" for an empty file) to rel.
func (s *Store) restoreFile(root *os.Root, rel, digest string, perm fs.FileMode) error {
	var content io.Reader = bytes.NewReader(nil)
	if digest != "" {
		p, err := s.blobPath(digest)
		if err != nil {
			return err
		}
		blob, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("the stored content is gone (%w)", err)
		}
		defer blob.Close()
		content = blob
	}
	// Not synced: a restore lost in a crash is a step that runs again.
	return rundir.WriteFrom(root, rel, content, perm, false)
}

// safeRel refuses a stored path that is not a plain relative path of the
// run directory outside the records, by the rule of the step spec's paths
// (step.RunDirPath), and already in the form it gives: entries are files a
// user can edit.
func safeRel(p string) error {
	if c, err := step.RunDirPath("output", p); err != nil || c != p {
		return fmt.Errorf("%q is no path of the run directory", p)
	}
	return nil
}

// Summary is an entry as `wflow cache ls` lists it.
type Summary struct {
	Key     string    `json:"key"`
	Step    string    `json:"step"`
	RunID   string    `json:"run_id"`
	Created time.Time `json:"created"`
	Size    int64     `json:"size"`
	Outputs int       `json:"outputs"`
}

// List returns every entry's summary, newest first. Entries it cannot read
// are skipped.
func (s *Store) List() ([]Summary, error) {
	names, err := os.ReadDir(filepath.Join(s.Dir, "entries"))
	if err != nil {
		return nil, err
	}
	var out []Summary
	for _, n := range names {
		key := "sha256:" + strings.TrimSuffix(n.Name(), ".json")
		e, err := s.Get(key)
		if err != nil {
			continue
		}
		out = append(out, Summary{Key: e.Key, Step: e.Step, RunID: e.RunID, Created: e.Created, Size: e.Size, Outputs: len(e.Outputs)})
	}
	slices.SortFunc(out, func(a, b Summary) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// Prune removes the entries older than olderThan (0: no age limit), then
// the oldest entries until what the rest name is at most maxSize bytes
// (negative: no size limit), then every blob no entry names. It takes the
// store's exclusive lock: a run storing or restoring finishes first.
func (s *Store) Prune(olderThan time.Duration, maxSize int64) (removed int, freed int64, err error) {
	unlock, err := s.lock(syscall.LOCK_EX)
	if err != nil {
		return 0, 0, err
	}
	defer unlock()
	list, err := s.List()
	if err != nil {
		return 0, 0, err
	}
	var total int64
	for _, e := range list {
		total += e.Size
	}
	keep := map[string]bool{}
	for i := len(list) - 1; i >= 0; i-- { // oldest first
		e := list[i]
		old := olderThan > 0 && time.Since(e.Created) > olderThan
		big := maxSize >= 0 && total > maxSize
		if !old && !big {
			keep[e.Key] = true
			continue
		}
		p, _ := s.entryPath(e.Key)
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, freed, err
		}
		total -= e.Size
		removed++
	}
	n, err := s.sweepBlobs(keep)
	return removed, n, err
}

// sweepBlobs removes every blob no kept entry names, and what tmp/ holds
// (no run writes while the exclusive lock is held), and returns the bytes
// freed.
func (s *Store) sweepBlobs(keep map[string]bool) (int64, error) {
	live := map[string]bool{}
	for key := range keep {
		e, err := s.Get(key)
		if err != nil {
			continue
		}
		live[e.Stdout], live[e.Stderr] = true, true
		for _, f := range e.Outputs {
			live[f.Digest] = true
		}
	}
	var freed int64
	tmp, _ := os.ReadDir(filepath.Join(s.Dir, "tmp"))
	for _, t := range tmp {
		os.Remove(filepath.Join(s.Dir, "tmp", t.Name()))
	}
	err := filepath.WalkDir(filepath.Join(s.Dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if live["sha256:"+d.Name()] {
			return nil
		}
		if info, err := d.Info(); err == nil {
			freed += info.Size()
		}
		return os.Remove(p)
	})
	return freed, err
}
