package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/containers/engines"
)

const versionUsage = `Usage: wflow version [--engine NAME]

Prints wflow's version and ABI version, then the container engine a run
would use (--engine, else $WFLOW_ENGINE, else docker): its name, version,
API version and address, or why it cannot be reached. The exit code is 0
either way: the engine is information here, not a requirement.

Flags:
`

func versionCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("wflow version", pflag.ContinueOnError)
	engineName := fs.String("engine", "", "the engine to describe: "+engineUsage)
	var opts engines.Options
	addKubernetesFlags(fs, &opts, false)
	if code, done := parseFlags(fs, args, versionUsage, stdout, stderr); done {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "wflow version: takes no arguments\n")
		return exitUsage
	}
	name, err := engines.Resolve(*engineName)
	if err != nil {
		fmt.Fprintf(stderr, "wflow version: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "wflow %s (ABI %s, revision v%d.%d)\n", wflowVersion(), abi.ModuleName, abi.Version, abi.Revision)
	if err := checkEngineOptions(name, opts, false); err != nil {
		fmt.Fprintf(stderr, "wflow version: %v\n", err)
		return exitUsage
	}
	e, err := engines.Open(ctx, name, opts)
	if err != nil {
		fmt.Fprintf(stdout, "engine: %s, not reachable: %v\n", name, err)
		return exitOK
	}
	defer e.Close()
	info := e.Info(ctx)
	fmt.Fprintf(stdout, "engine: %s %s (API %s) at %s\n", info.Name, info.Version, info.API, info.Host)
	return exitOK
}
