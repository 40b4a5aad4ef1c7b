package notebooks

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"
	"text/template"
)

// DefaultBase is the base image of notebook images unless --notebook-base
// or a step's "base" says otherwise.
const DefaultBase = "python:3.12-slim"

// DefaultTemplate is the Dockerfile of notebook images. It installs the real
// papermill and a kernel, pinned to the versions wflow is written against
// (PapermillVersion), in one pip run with the step's requirements, so that
// pip resolves them together: a requirement that needs another version of
// papermill's dependencies fails the build rather than moving them
// silently. {{.Base}} is the base image. The build context holds
// requirements.txt and, under local/, the local packages the requirements
// name (rewritten to point there). The pins are in the template's text, so
// in every image's tag.
const DefaultTemplate = `FROM {{.Base}}
COPY requirements.txt /wflow-build/requirements.txt
COPY local/ /wflow-build/local/
RUN pip install --no-cache-dir papermill==` + PapermillVersion + ` nbclient==0.10.4 ipykernel==6.29.5 -r /wflow-build/requirements.txt
`

// PapermillVersion is the papermill release wflow's notebook steps are
// written and tested against (its test stand-in mirrors this release).
const PapermillVersion = "2.6.0"

// ImagePrefix is the repository of every notebook image; the tag is the
// content hash of its build context.
const ImagePrefix = "wflow-notebook"

// buildContext is a notebook image's build context, made in memory.
type buildContext struct {
	tar    []byte // the context, a deterministic tar
	tag    string // ImagePrefix:<hash of the context>
	exists bool   // the engine said the image exists: nothing to build
	base   string // the base image the Dockerfile starts from
}

// makeContext renders the Dockerfile and packs it with requirements.txt and
// the local packages into a tar. The same inputs give the same bytes (sorted
// entries, fixed times and owners), so the hash of the tar and of baseID
// (the base image's ID, "" when the engine does not have it yet) is the
// image's identity: base, template, requirements and the local packages'
// contents.
func makeContext(tmpl *template.Template, base, baseID string, reqs []string, rundir string) (buildContext, error) {
	var dockerfile bytes.Buffer
	if err := tmpl.Execute(&dockerfile, struct{ Base string }{base}); err != nil {
		return buildContext{}, fmt.Errorf("notebook Dockerfile template: %w", err)
	}
	files := map[string][]byte{"Dockerfile": dockerfile.Bytes(), "local/.keep": nil}
	var lines []string
	for i, r := range reqs {
		if !isLocal(r) {
			lines = append(lines, r)
			continue
		}
		rel := relRunDir(r)
		dir := fmt.Sprintf("local/%d/%s", i, path.Base(rel)) // keeps a wheel's file name intact
		if err := addLocal(files, rundir, rel, dir); err != nil {
			return buildContext{}, fmt.Errorf("requirement %s: %w", r, err)
		}
		lines = append(lines, "/wflow-build/"+dir)
	}
	files["requirements.txt"] = []byte(strings.Join(lines, "\n") + "\n")

	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		hdr := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return buildContext{}, err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return buildContext{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return buildContext{}, err
	}
	h := sha256.New()
	h.Write(buf.Bytes())
	h.Write([]byte("\x00base-id\x00" + baseID))
	sum := h.Sum(nil)
	return buildContext{tar: buf.Bytes(), tag: ImagePrefix + ":" + hex.EncodeToString(sum[:8])}, nil
}

// maxLocalPackage caps the bytes of one local package put in a context.
const maxLocalPackage = 64 << 20

// addLocal adds a local package, the file or folder rel of the run
// directory, under dst. Steps write the run directory, so it is read
// through os.Root, never by a path checked and opened again: a link, or a
// folder swapped for a link during the walk, cannot lead outside the run
// directory (nor, for a folder, outside the package). The package may hold
// regular files and folders only, opened non-blocking (a FIFO is an error,
// not a wait), at most maxLocalPackage bytes in all.
func addLocal(files map[string][]byte, rundir, rel, dst string) error {
	root, err := os.OpenRoot(rundir)
	if err != nil {
		return err
	}
	defer root.Close()
	info, err := root.Stat(rel)
	if err != nil {
		return escaped(rel, err)
	}
	if info.Mode().IsRegular() {
		b, err := readRegular(root, rel, maxLocalPackage)
		if err != nil {
			return err
		}
		files[dst] = b
		return nil
	}
	if !info.IsDir() {
		return fmt.Errorf("%s is neither a file nor a folder", rel)
	}
	pkg, err := root.OpenRoot(rel)
	if err != nil {
		return escaped(rel, err)
	}
	defer pkg.Close()
	left, entries := maxLocalPackage, maxPackageEntries
	return walkPackage(pkg, ".", 0, &entries, func(p string, d fs.DirEntry) error {
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s/%s is a symbolic link; local packages may hold regular files only", rel, p)
		case !d.Type().IsRegular():
			return fmt.Errorf("%s/%s is not a regular file", rel, p)
		}
		b, err := readRegular(pkg, p, left)
		if err != nil {
			return err
		}
		left -= len(b)
		files[dst+"/"+p] = b
		return nil
	})
}

// Caps on a local package's shape: how deep its folders go, how many files
// and folders it holds in all (a step can make millions of empty folders).
const (
	maxPackageDepth   = 64
	maxPackageEntries = 10000
)

// walkPackage calls file for every entry of the folder dir of pkg that is
// not a folder, in name order, and descends into folders. A folder is opened
// with O_DIRECTORY|O_NONBLOCK: something swapped in for it (a FIFO) is an
// error, never a wait.
func walkPackage(pkg *os.Root, dir string, depth int, left *int, file func(p string, d fs.DirEntry) error) error {
	if depth > maxPackageDepth {
		return fmt.Errorf("%s: folders nest deeper than %d", dir, maxPackageDepth)
	}
	f, err := pkg.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return escaped(dir, err)
	}
	var entries []fs.DirEntry
	for { // in chunks, counted: a folder of a million entries stops at the cap
		chunk, err := f.ReadDir(256)
		entries = append(entries, chunk...)
		if *left -= len(chunk); *left < 0 {
			f.Close()
			return fmt.Errorf("a local package may hold at most %d files and folders", maxPackageEntries)
		}
		if err == io.EOF || len(chunk) == 0 {
			break
		}
		if err != nil {
			f.Close()
			return err
		}
	}
	f.Close()
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		p := path.Join(dir, e.Name())
		if e.IsDir() {
			err = walkPackage(pkg, p, depth+1, left, file)
		} else {
			err = file(p, e)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// escaped turns os.Root's refusal of a path that leads out (an error that
// is no errno) into a message that says so; other errors pass as they are.
func escaped(rel string, err error) error {
	var pe *fs.PathError
	var errno syscall.Errno
	if errors.As(err, &pe) && !errors.As(pe.Err, &errno) && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s lies outside the run directory (a symbolic link leads out)", rel)
	}
	return err
}

// readRegular reads a regular file of root, non-blocking, refusing anything
// else and more than max bytes.
func readRegular(root *os.Root, name string, max int) ([]byte, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > max {
		return nil, fmt.Errorf("local package is over %d MiB", maxLocalPackage>>20)
	}
	return b, nil
}
