package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wflow/wflow/internal/testenv"
)

// TestInitScaffoldsBuildAndRun: `wflow init` makes, for each language, a
// project outside wflow's repository that its toolchain builds (with no
// network for Go) and that runs a step with wflow.
func TestInitScaffoldsBuildAndRun(t *testing.T) {
	testenv.Docker(t)
	asc := filepath.Join(testenv.Root(), "examples", "assemblyscript", "node_modules", ".bin", "asc")
	for _, c := range []struct {
		lang, tool string
		build      []string
		env        []string
		greeting   string
	}{
		{"go", "go", []string{"build", "-o", "workflow.wasm", "."}, []string{"GOOS=wasip1", "GOARCH=wasm", "GOPROXY=off", "GOWORK=off", "GOFLAGS="}, "hello from Go"},
		{"c", "clang", []string{"--target=wasm32-wasi", "-O2", "-Wall", "-Werror", "-o", "workflow.wasm", "main.c"}, nil, "hello from C"},
		{"rust", "/usr/bin/rustc", []string{"--edition", "2021", "--target", "wasm32-wasi", "-O", "-o", "workflow.wasm", "src/main.rs"}, nil, "hello from Rust"},
		{"assemblyscript", asc, []string{"main.ts", "-o", "workflow.wasm", "--exportStart", "_start", "--use", "abort=main/abort", "--runtime", "stub", "-O"}, nil, ""},
	} {
		t.Run(c.lang, func(t *testing.T) {
			if _, err := exec.LookPath(c.tool); err != nil {
				testenv.Missing(t, "%s not installed (scripts/setup.sh installs it)", c.tool)
			}
			dir := filepath.Join(t.TempDir(), "My Flow")
			code, stdout, stderr := wflow(t, "init", "--lang", c.lang, dir)
			if code != exitOK || !strings.Contains(stdout, "cd '"+dir+"'") {
				t.Fatalf("init: exit %d\n%s\n%s", code, stdout, stderr)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, c.tool, c.build...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), c.env...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s %s: %v\n%s", c.tool, strings.Join(c.build, " "), err, out)
			}
			rundir := t.TempDir()
			code, stdout, stderr = wflow(t, "run", filepath.Join(dir, "workflow.wasm"), "--rundir", rundir, "-p", "image=wflow-test/busybox")
			if code != exitOK {
				t.Fatalf("run: exit %d\n%s\n%s", code, stdout, stderr)
			}
			var out struct {
				Language string `json:"language"`
				StepOK   bool   `json:"step_ok"`
				Greeting string `json:"greeting"`
			}
			if err := json.Unmarshal(readReport(t, rundir).Output, &out); err != nil || !out.StepOK || out.Greeting != c.greeting {
				t.Errorf("output %+v %v", out, err)
			}
		})
	}
}

func TestInitRefusals(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "keep.txt"), nil, 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"init", dir}, "is not empty"},
		{[]string{"init", "--lang", "cobol", filepath.Join(dir, "x")}, `unknown language "cobol"`},
		{[]string{"init"}, "want one DIR"},
		{[]string{"init", filepath.Join(dir, "keep.txt")}, "exists and is not a folder"},
	} {
		if code, _, stderr := wflow(t, c.args...); code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d %q, want %q", c.args, code, stderr, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("an unknown language left a folder")
	}
}
