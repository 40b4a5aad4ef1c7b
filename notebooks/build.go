package notebooks

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/rundir"
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
const ImagePrefix = containers.NotebookImagePrefix

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
// directory, under dst. Steps write the run directory, so it is walked with
// rundir.Walk: nothing outside the run directory can be reached, however a
// step swaps its files. The package may hold regular files and folders
// only (a link or a FIFO is an error), at most maxLocalPackage bytes and
// maxPackageEntries entries in all, nested at most maxPackageDepth deep.
func addLocal(files map[string][]byte, runDir, rel, dst string) error {
	root, err := os.OpenRoot(runDir)
	if err != nil {
		return err
	}
	defer root.Close()
	rel = path.Clean(filepath.ToSlash(rel))
	left := int64(maxLocalPackage)
	lim := rundir.WalkLimits{Depth: maxPackageDepth, Entries: maxPackageEntries}
	return rundir.Walk(root, rel, lim, func(e rundir.Entry, f *os.File) error {
		switch {
		case e.Type == fs.ModeDir:
			return nil
		case e.Type == fs.ModeSymlink:
			return fmt.Errorf("%s is a symbolic link; local packages may hold regular files only", e.Path)
		case f == nil:
			return fmt.Errorf("%s is not a regular file", e.Path)
		}
		b, err := rundir.ReadAll(f, e.Path, left)
		if errors.Is(err, rundir.ErrTooLarge) {
			return fmt.Errorf("local package is over %d MiB", maxLocalPackage>>20)
		}
		if err != nil {
			return err
		}
		left -= int64(len(b))
		if e.Path == rel {
			files[dst] = b
		} else {
			files[dst+"/"+strings.TrimPrefix(e.Path, rel+"/")] = b
		}
		return nil
	})
}

// Caps on a local package's shape: how deep its folders go, how many files
// and folders it holds in all (a step can make millions of empty folders).
const (
	maxPackageDepth   = 64
	maxPackageEntries = 10000
)
