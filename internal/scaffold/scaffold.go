// Package scaffold writes new workflow projects for `wflow init`: a module
// in Go, C, Rust or AssemblyScript that builds with its language's
// toolchain, with no network and nothing else from wflow's repository, and
// runs with wflow as it is. Each project carries what it needs: the Go SDK
// (as local modules wired in with replace), the C headers, or nothing (Rust
// and AssemblyScript call the host ABI directly).
package scaffold

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/wflow/wflow/abi"
	csdk "github.com/wflow/wflow/sdk/c"
	gosdk "github.com/wflow/wflow/sdk/go"
)

//go:embed all:templates
var templates embed.FS

// Languages are the languages Write knows, the first the default.
var Languages = []string{"go", "c", "rust", "assemblyscript"}

// placeholder is replaced by the project's name in every template file;
// files named *.tmpl lose that suffix.
const placeholder = "{{.Name}}"

// Write creates a project in lang in dir, which must not exist or be
// empty, and returns the paths it wrote, relative to dir.
func Write(dir, lang string) ([]string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	files, err := Files(Name(abs), lang)
	if err != nil {
		return nil, err
	}
	if info, err := os.Stat(dir); err == nil && !info.IsDir() {
		return nil, fmt.Errorf("%s exists and is not a folder", dir)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s is not empty", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// Written through os.Root, each file created anew (O_EXCL): a link
	// planted in dir meanwhile is an error, never followed out of it.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := writeNew(root, filepath.FromSlash(name), files[name]); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// writeNew creates the file rel in root, with its folders; it must not
// exist.
func writeNew(root *os.Root, rel string, data []byte) error {
	if d := filepath.Dir(rel); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Files returns the files of a project named name in lang, by slash path.
func Files(name, lang string) (map[string][]byte, error) {
	known := false
	for _, l := range Languages {
		known = known || l == lang
	}
	if !known {
		return nil, fmt.Errorf("unknown language %q (use %s)", lang, strings.Join(Languages, ", "))
	}
	files := map[string][]byte{}
	root := "templates/" + lang
	err := fs.WalkDir(templates, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := templates.ReadFile(p)
		if err != nil {
			return err
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(p, root+"/"), ".tmpl")
		files[rel] = []byte(strings.ReplaceAll(string(b), placeholder, name))
		return nil
	})
	if err != nil {
		return nil, err
	}
	switch lang {
	case "go":
		err = copyFS(files, abi.Source, ".", "third_party/wflow/abi")
		if err == nil {
			err = copyFS(files, gosdk.Source, ".", "third_party/wflow/sdk-go")
		}
	case "c":
		err = copyFS(files, csdk.Source, ".", ".")
	}
	return files, err
}

// copyFS adds the files of src under dir to files, under dst, leaving out
// tests.
func copyFS(files map[string][]byte, src fs.FS, dir, dst string) error {
	return fs.WalkDir(src, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		files[path.Join(dst, p)] = b
		return nil
	})
}

// Name is a project name made from dir's last element: lower case letters,
// digits, '-' and '_', starting with a letter, as Go module paths, Cargo
// and npm all accept.
func Name(dir string) string {
	base := strings.ToLower(filepath.Base(filepath.Clean(dir)))
	var b strings.Builder
	for _, r := range base {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-_")
	if name == "" || name[0] < 'a' || name[0] > 'z' {
		name = "workflow-" + name
	}
	return strings.TrimRight(name, "-")
}
