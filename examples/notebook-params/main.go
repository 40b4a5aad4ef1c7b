// Command notebook-params is an example workflow with notebook steps. It puts
// a notebook and a local Python package into the run directory, runs the
// notebook twice with different typed parameters (the second run reuses the
// image the first built), reads the values each run wrote into the run
// directory, and sets them as its output. With -p fail=yes it runs the
// notebook a third time with fail=True and reports the cell that raised.
//
//	GOOS=wasip1 GOARCH=wasm go build -o notebook-params.wasm ./examples/notebook-params
//	wflow run notebook-params.wasm
//
// Run this way, the notebook image is built from python:3.12-slim with the
// real papermill, which needs a registry and PyPI. Without them (as in wflow's
// own tests), use the local test image and template:
//
//	wflow run notebook-params.wasm --notebook-base wflow-test/python \
//	    --notebook-dockerfile testdata/notebook/Dockerfile.test.tmpl
package main

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/wflow/wflow/sdk/go/wflow"
)

//go:embed all:files
var files embed.FS

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	// The module sees the run directory as its working directory.
	if err := copyFiles(); err != nil {
		return err
	}
	runs := []wflow.Notebook{
		{Name: "analysis-first", Notebook: "analysis.ipynb", Output: "analysis-first.out.ipynb",
			Requirements: []string{"./pkgs/wflowdemo"},
			Parameters: map[string]any{"label": "first", "name": "Ada", "count": 2, "ratio": wflow.Float(2),
				"flag": true, "items": []any{1, "two", 3.5}, "nested": map[string]any{"a": map[string]any{"b": []int{1, 2}}}, "code": "1"}},
		{Name: "analysis-second", Notebook: "analysis.ipynb", Output: "analysis-second.out.ipynb",
			Requirements: []string{"./pkgs/wflowdemo"},
			Parameters:   map[string]any{"label": "second", "name": "Grace", "count": 1, "ratio": 0.25, "code": "007"}},
	}
	if wflow.Param("fail") == "yes" {
		runs = append(runs, wflow.Notebook{Name: "analysis-fail", Notebook: "analysis.ipynb",
			Requirements: []string{"./pkgs/wflowdemo"}, Parameters: map[string]any{"label": "fail", "fail": true}})
	}
	output := map[string]any{}
	for _, nb := range runs {
		res, err := wflow.RunNotebook(nb)
		if err != nil {
			return err
		}
		entry := map[string]any{"returncode": res.ReturnCode, "built": res.Notebook.Built, "image": res.Notebook.Image}
		if cell := res.Notebook.FailedCell; cell != nil {
			entry["failed_cell"] = cell
			entry["error"] = res.Error
		} else if !res.OK() {
			return fmt.Errorf("notebook %s failed: %s %s", nb.Name, res.Error, res.Stderr)
		} else {
			label, _ := nb.Parameters["label"].(string)
			b, err := os.ReadFile(filepath.Join("results", label+".json"))
			if err != nil {
				return err
			}
			var written map[string]any
			if err := json.Unmarshal(b, &written); err != nil {
				return err
			}
			entry["written"] = written
		}
		wflow.Log("%s: returncode %d, image %s (built now: %v)", nb.Name, res.ReturnCode, res.Notebook.Image, res.Notebook.Built)
		output[nb.Name] = entry
	}
	return wflow.SetOutput(output)
}

// copyFiles writes the embedded notebook and package into the run directory.
func copyFiles() error {
	return fs.WalkDir(files, "files", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst, _ := filepath.Rel("files", p)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}
