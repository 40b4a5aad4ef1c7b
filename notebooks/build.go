package notebooks

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
)

// DefaultBase is the base image of notebook images unless --notebook-base
// or a step's "base" says otherwise.
const DefaultBase = "python:3.12-slim"

// DefaultTemplate is the Dockerfile of notebook images. It installs the real
// papermill and a kernel, then the step's requirements. {{.Base}} is the base
// image. The build context holds requirements.txt and, under local/, the
// local packages the requirements name (rewritten to point there).
const DefaultTemplate = `FROM {{.Base}}
RUN pip install --no-cache-dir papermill ipykernel
COPY requirements.txt /wflow-build/requirements.txt
COPY local/ /wflow-build/local/
RUN pip install --no-cache-dir -r /wflow-build/requirements.txt
`

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
// entries, fixed times and owners), so the hash of the tar is the image's
// identity: base, template, requirements and the local packages' contents.
func makeContext(tmpl *template.Template, base string, reqs []string, rundir string) (buildContext, error) {
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
		src, err := insideRunDir(rundir, rel)
		if err != nil {
			return buildContext{}, fmt.Errorf("requirement %s: %w", r, err)
		}
		if err := addTree(files, src, dir); err != nil {
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
	sum := sha256.Sum256(buf.Bytes())
	return buildContext{tar: buf.Bytes(), tag: ImagePrefix + ":" + hex.EncodeToString(sum[:8])}, nil
}

// insideRunDir resolves rel in the run directory, following symbolic links,
// and refuses a path that ends up outside it: steps write the run directory,
// and a link there must not smuggle host files into an image.
func insideRunDir(rundir, rel string) (string, error) {
	root, err := filepath.EvalSymlinks(rundir)
	if err != nil {
		return "", err
	}
	p, err := filepath.EvalSymlinks(filepath.Join(rundir, filepath.FromSlash(rel)))
	if err != nil {
		return "", err
	}
	if p != root && !strings.HasPrefix(p, root+string(filepath.Separator)) {
		return "", fmt.Errorf("%s lies outside the run directory", rel)
	}
	return p, nil
}

// maxLocalPackage caps the bytes of one local package put in a context.
const maxLocalPackage = 64 << 20

// addTree adds a file or a folder (regular files only; symlinks are refused
// so a package cannot pull in files from outside the run directory).
func addTree(files map[string][]byte, src, dst string) error {
	total := 0
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symbolic link; local packages may hold regular files only", p)
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if total += len(b); total > maxLocalPackage {
			return fmt.Errorf("local package is over %d MiB", maxLocalPackage>>20)
		}
		rel, _ := filepath.Rel(src, p)
		name := dst
		if rel != "." {
			name = dst + "/" + filepath.ToSlash(rel)
		}
		files[name] = b
		return nil
	})
}
