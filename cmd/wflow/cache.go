package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/wflow/wflow/runtime"
	"github.com/wflow/wflow/step"
	"github.com/wflow/wflow/stepcache"
)

const cacheUsage = `Usage:
  wflow cache ls [--json]                         list the stored steps, newest first
  wflow cache show KEY                            print a stored step: its key's parts, result and outputs
  wflow cache prune [--older-than D] [--max-size S]
                                                  remove entries older than D (e.g. 720h), then the
                                                  oldest until the rest hold at most S (e.g. 10g)

The step cache (docs/durability.md) keeps the results and outputs of steps
that declared outputs and succeeded, by key, in --cache-dir's steps/ folder.

Flags:
`

func cacheCommand(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("wflow cache", pflag.ContinueOnError)
	dir := fs.String("cache-dir", runtime.DefaultCacheDir(), "wflow's cache folder (as for wflow run)")
	asJSON := fs.Bool("json", false, "ls: print JSON")
	olderThan := fs.Duration("older-than", 0, "prune: remove entries older than this (0: no age limit)")
	maxSize := fs.String("max-size", "", "prune: then remove the oldest entries until the rest hold at most this many bytes, e.g. 10g")
	if code, done := parseFlags(fs, args, cacheUsage, stdout, stderr); done {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(stderr, "wflow cache: want ls, show KEY or prune\n(see wflow cache --help)\n")
		return exitUsage
	}
	if *dir == "" {
		fmt.Fprintf(stderr, "wflow cache: no cache folder (give --cache-dir)\n")
		return exitUsage
	}
	store, err := stepcache.Open(filepath.Join(*dir, "steps"))
	if err != nil {
		fmt.Fprintf(stderr, "wflow cache: %v\n", err)
		return exitHostError
	}
	switch sub := fs.Arg(0); {
	case sub == "ls" && fs.NArg() == 1:
		return cacheList(store, *asJSON, stdout, stderr)
	case sub == "show" && fs.NArg() == 2:
		e, err := store.Get(fs.Arg(1))
		if err != nil {
			fmt.Fprintf(stderr, "wflow cache show: %v\n", err)
			return exitUsage
		}
		b, _ := step.MarshalJSON(e, true)
		stdout.Write(append(b, '\n'))
		return exitOK
	case sub == "prune" && fs.NArg() == 1:
		limit := int64(-1)
		if *maxSize != "" {
			if limit, err = step.ParseMemory(*maxSize); err != nil {
				fmt.Fprintf(stderr, "wflow cache prune: --max-size: %v\n", err)
				return exitUsage
			}
		}
		if *olderThan == 0 && limit < 0 {
			fmt.Fprintf(stderr, "wflow cache prune: give --older-than or --max-size\n")
			return exitUsage
		}
		removed, freed, err := store.Prune(*olderThan, limit)
		fmt.Fprintf(stdout, "removed %d entries, freed %s\n", removed, size(freed))
		if err != nil {
			fmt.Fprintf(stderr, "wflow cache prune: %v\n", err)
			return exitHostError
		}
		return exitOK
	}
	fmt.Fprintf(stderr, "wflow cache: want ls, show KEY or prune, got %q\n(see wflow cache --help)\n", strings.Join(fs.Args(), " "))
	return exitUsage
}

func cacheList(store *stepcache.Store, asJSON bool, stdout, stderr io.Writer) int {
	list, err := store.List()
	if err != nil {
		fmt.Fprintf(stderr, "wflow cache ls: %v\n", err)
		return exitHostError
	}
	if asJSON {
		if list == nil {
			list = []stepcache.Summary{}
		}
		b, _ := json.Marshal(list)
		stdout.Write(append(b, '\n'))
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tSTEP\tRUN\tSTORED\tSIZE\tOUTPUTS")
	for _, e := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", e.Key, e.Step, e.RunID, e.Created.Local().Format(time.DateTime), size(e.Size), e.Outputs)
	}
	tw.Flush()
	return exitOK
}

// size is a byte count for a person.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
