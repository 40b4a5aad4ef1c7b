package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/containers/engines"
	"github.com/wflow/wflow/notebooks"
	"github.com/wflow/wflow/step"
)

const notebookUsage = `Usage: wflow notebook build [-r REQUIREMENT]... [--requirements FILE] [flags]

Builds the image notebook steps with these requirements will run in, ahead
of a run, and prints its reference. The image is tagged with the content
hash of base, Dockerfile template and requirements: a run with the same
inputs finds it and builds nothing. Local packages ("./pkg" requirements)
are read from --context. Exit 0 when the image exists or was built, 1 when
the build failed (its log says why).

Flags:
`

func notebookCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "build" && args[0] != "-h" && args[0] != "--help") {
		fmt.Fprint(stderr, "wflow notebook: want `wflow notebook build [-r REQUIREMENT]...`\n")
		return exitUsage
	}
	if args[0] == "build" {
		args = args[1:]
	}
	fs := pflag.NewFlagSet("wflow notebook build", pflag.ContinueOnError)
	reqs := fs.StringArrayP("requirement", "r", nil, "a pip requirement (repeatable)")
	reqFile := fs.String("requirements", "", "a requirements.txt `file` (one requirement a line, # comments)")
	base := fs.String("notebook-base", notebooks.DefaultBase, "base image")
	dockerfile := fs.String("notebook-dockerfile", "", "Dockerfile template `file` (default: the built-in one)")
	network := fs.String("network", "default", "network mode of the build (pip runs there)")
	timeout := fs.Duration("timeout", notebooks.DefaultBuildTimeout, "wall-clock limit of the build")
	engineName := fs.String("engine", "", "the engine that builds and keeps the image: docker, podman or swarm (its manager; kubernetes builds none) (default: $WFLOW_ENGINE, else docker)")
	contextDir := fs.String("context", ".", "folder local requirements (./pkg) are read from: the run directory of the runs to come")
	if code, done := parseFlags(fs, args, notebookUsage, stdout, stderr); done {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "wflow notebook build: takes no arguments, only flags\n")
		return exitUsage
	}
	all := append([]string(nil), *reqs...)
	if *reqFile != "" {
		b, err := readInput(*reqFile, maxSmallFile)
		if err != nil {
			fmt.Fprintf(stderr, "wflow notebook build: %v\n", err)
			return exitUsage
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				all = append(all, line)
			}
		}
	}
	spec, _ := step.MarshalJSON(notebooks.Build{Name: "build", Base: *base, Requirements: all}, false)
	build, err := notebooks.ParseBuild(spec)
	if err != nil {
		fmt.Fprintf(stderr, "wflow notebook build: %v\n", err)
		return exitUsage
	}
	tmpl, err := readTemplate(*dockerfile)
	if err != nil {
		fmt.Fprintf(stderr, "wflow notebook build: %v\n", err)
		return exitUsage
	}
	dir, err := filepath.Abs(*contextDir)
	if err != nil {
		fmt.Fprintf(stderr, "wflow notebook build: %v\n", err)
		return exitUsage
	}
	name, err := engines.Resolve(*engineName)
	if err != nil {
		fmt.Fprintf(stderr, "wflow notebook build: %v\n", err)
		return exitUsage
	}
	engine, err := engines.Open(ctx, name, engines.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "wflow notebook build: %v\n", err)
		return exitNoEngine
	}
	defer engine.Close()
	con := newConsole(stdout, false)
	log := &lineWriter{c: con, source: "build", stream: "stdout"}
	// Every input here is the invoking user's own (no module): the base may
	// be pulled from wherever it names.
	r := &notebooks.Runner{Engine: engine, RunDir: dir, Base: *base, Template: tmpl, NoLogFile: true,
		Pulls: containers.Pulls{Registries: []string{"*"}}, BuildLimits: step.Limits{Network: *network, Timeout: step.Duration(*timeout)}}
	res := r.Build(ctx, 1, build, containers.Live{Stdout: log})
	log.flush()
	con.Close()
	if res.Error != "" {
		fmt.Fprintf(stderr, "wflow notebook build: %s\n", res.Error)
		return exitFailed
	}
	if res.Notebook.Built {
		fmt.Fprintf(stdout, "built %s\n", res.Image)
	} else {
		fmt.Fprintf(stdout, "%s exists: nothing to build\n", res.Image)
	}
	return exitOK
}
