package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/wflow/wflow/internal/scaffold"
)

const initUsage = `Usage: wflow init [--lang go|c|rust|assemblyscript] DIR

Creates DIR (which must not exist, or be empty) with a workflow project in
the language: a module that runs one step and sets its output, with a
README saying how to build and run it. The project needs nothing from
wflow's repository: a Go project carries wflow's Go SDK under
third_party/wflow (wired in with replace lines in go.mod, so the build needs
no network), a C project wflow.h.

Flags:
`

// buildHints are the commands that build and run a new project.
var buildHints = map[string]string{
	"go":             "GOOS=wasip1 GOARCH=wasm go build -o workflow.wasm .\n  wflow run workflow.wasm -p image=busybox --allow-registry docker.io",
	"c":              "clang --target=wasm32-wasi -O2 -o workflow.wasm main.c\n  wflow run workflow.wasm -p image=busybox --allow-registry docker.io",
	"rust":           "cargo build --release --target wasm32-wasip1\n  wflow run target/wasm32-wasip1/release/workflow.wasm -p image=busybox --allow-registry docker.io",
	"assemblyscript": "npm install && npm run build\n  wflow run workflow.wasm -p image=busybox --allow-registry docker.io",
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+=:,@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func initCommand(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("wflow init", pflag.ContinueOnError)
	lang := fs.String("lang", scaffold.Languages[0], "the project's language: "+strings.Join(scaffold.Languages, ", "))
	if code, done := parseFlags(fs, args, initUsage, stdout, stderr); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "wflow init: want one DIR\n")
		return exitUsage
	}
	dir := fs.Arg(0)
	files, err := scaffold.Write(dir, *lang)
	if err != nil {
		fmt.Fprintf(stderr, "wflow init: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "created %s (%s, %d files). Build and run it (with wflow on your PATH):\n  cd %s\n  %s\n", dir, *lang, len(files), shellQuote(dir), buildHints[*lang])
	return exitOK
}
