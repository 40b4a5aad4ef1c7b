package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/wflow/wflow/internal/termsafe"
	"github.com/wflow/wflow/runtime"
)

const validateUsage = `Usage: wflow validate MODULE.wasm [--json]

Lists the module's imports and checks them against this wflow: each must be a
WASI preview1 function or a function of the ABI it speaks, with the right
signature, and the module must be a WASI command (export _start). Names the
ABI revision the module needs: that of the newest host function it imports.
Exit code 0 when the module can run, 2 when it cannot.

Flags:
`

func validateCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("wflow validate", pflag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the imports and problems as JSON")
	if code, done := parseFlags(fs, args, validateUsage, stdout, stderr); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "wflow validate: want one MODULE.wasm, got %d arguments\n", fs.NArg())
		return exitUsage
	}
	wasm, err := readInput(fs.Arg(0), maxModuleFile)
	if err != nil {
		fmt.Fprintf(stderr, "wflow validate: %v\n", err)
		return exitUsage
	}
	v, err := runtime.Validate(ctx, wasm)
	if err != nil {
		fmt.Fprintf(stderr, "wflow validate: %s: %s\n", fs.Arg(0), termsafe.Escape(err.Error()))
		return exitUsage
	}
	if *asJSON {
		if v.Problems == nil {
			v.Problems = []string{}
		}
		b, _ := json.MarshalIndent(v, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "MODULE\tNAME\tSIGNATURE\tSTATUS")
		for _, imp := range v.Imports {
			status := "ok"
			if imp.Problem != "" {
				status = "PROBLEM"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", termsafe.Escape(imp.Module), termsafe.Escape(imp.Name), imp.Signature, status)
		}
		tw.Flush()
	}
	if !v.OK() {
		for _, p := range v.Problems {
			fmt.Fprintf(stderr, "wflow validate: %s: %s\n", fs.Arg(0), termsafe.Escape(p))
		}
		return exitUsage
	}
	if !*asJSON {
		needs := v.Needs
		if len(v.NeedsFor) > 0 {
			needs += " (for " + strings.Join(v.NeedsFor, ", ") + ")"
		}
		fmt.Fprintf(stdout, "%s: ok, needs %s; this wflow speaks %s\n", fs.Arg(0), needs, runtime.WorkflowABI.Revision())
	}
	return exitOK
}
