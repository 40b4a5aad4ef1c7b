package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/containers/docker"
)

const gcUsage = `Usage: wflow gc

Removes the containers that wflow processes of this host started and left
behind when they died (SIGKILL, a crash): containers labelled io.wflow.run
whose io.wflow.pid process no longer runs. wflow run does the same when it
starts. Containers of live wflow processes and of other hosts are kept.

Flags:
`

func gcCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("wflow gc", pflag.ContinueOnError)
	if code, done := parseFlags(fs, args, gcUsage, stdout, stderr); done {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "wflow gc: takes no arguments\n")
		return exitUsage
	}
	engine, err := docker.New(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "wflow gc: %v\n", err)
		return exitNoEngine
	}
	defer engine.Close()
	n, runs, err := containers.RemoveOrphans(ctx, engine)
	fmt.Fprintf(stdout, "removed %d container(s) left by wflow processes that no longer run%s\n", n, runList(runs))
	if err != nil {
		fmt.Fprintf(stderr, "wflow gc: %v\n", err)
		return exitHostError
	}
	return exitOK
}

func runList(runs []string) string {
	if len(runs) == 0 {
		return ""
	}
	return " (runs " + strings.Join(runs, ", ") + ")"
}
