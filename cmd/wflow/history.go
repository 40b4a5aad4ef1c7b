package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/wflow/wflow/history"
	"github.com/wflow/wflow/internal/termsafe"
	"github.com/wflow/wflow/journal"
	"github.com/wflow/wflow/report"
	"github.com/wflow/wflow/step"
	"github.com/wflow/wflow/trace"
)

// defaultRunsDir is where `wflow run` makes run directories without
// --rundir, and where the history commands look.
const defaultRunsDir = "runs"

const runsUsage = `Usage: wflow runs [DIR...] [--json] [-n N]

Lists the runs in the run directories DIR (each a run directory, or a folder
of them; default ./runs, where wflow run puts them), newest first: id,
status, start, duration, steps, module and run directory. A run whose wflow
was killed is "unfinished"; one going on now is "running".

Flags:
`

func runsCommand(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("wflow runs", pflag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print a JSON array of the runs")
	limit := fs.IntP("last", "n", 0, "list only the newest N runs (0: all)")
	if code, done := parseFlags(fs, args, runsUsage, stdout, stderr); done {
		return code
	}
	if *limit < 0 {
		fmt.Fprintln(stderr, "wflow runs: -n must be 0 or more")
		return exitUsage
	}
	dirs := fs.Args()
	if len(dirs) == 0 {
		dirs = []string{defaultRunsDir}
	}
	runs, errs := history.List(dirs)
	for _, err := range errs {
		if errors.Is(err, os.ErrNotExist) && len(fs.Args()) == 0 {
			fmt.Fprintln(stderr, "wflow runs: no ./runs here (where wflow run makes run directories without --rundir): give a run directory or a folder of them")
			continue
		}
		fmt.Fprintf(stderr, "wflow runs: %s\n", termsafe.Escape(err.Error()))
	}
	if *limit > 0 && len(runs) > *limit {
		runs = runs[:*limit]
	}
	if *asJSON {
		if runs == nil {
			runs = []history.Run{}
		}
		b, _ := json.MarshalIndent(runs, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN\tSTATUS\tSTARTED\tDURATION\tSTEPS\tMODULE\tRUNDIR")
		for _, r := range runs {
			steps := strconv.Itoa(r.Steps)
			if r.Failed > 0 {
				steps += fmt.Sprintf(" (%d not ok)", r.Failed)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", termsafe.Escape(r.ID), termsafe.Escape(r.Status), localTime(r.Started),
				(time.Duration(r.DurationMS) * time.Millisecond).Round(time.Millisecond), steps,
				termsafe.Escape(moduleName(r.Module)), termsafe.Escape(r.Dir))
		}
		tw.Flush()
	}
	if len(errs) > 0 && len(runs) == 0 && len(fs.Args()) > 0 {
		return exitUsage
	}
	return exitOK
}

// localTime is a time as this machine's clock shows it, with its zone
// (run ids, traces and logs are in UTC).
func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

// moduleName is a module's file name; "-" when the run did not record it.
func moduleName(path string) string {
	if path == "" {
		return "-"
	}
	return filepath.Base(path)
}

// findRun resolves a command's RUN argument, or says why not.
func findRun(name, arg string, dirs []string, stderr io.Writer) (history.Run, bool) {
	if len(dirs) == 0 {
		dirs = []string{defaultRunsDir}
	}
	run, err := history.Find(arg, dirs)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", name, termsafe.Escape(err.Error()))
		return run, false
	}
	return run, true
}

// loadRun finds the one RUN a command's arguments name and reads its
// report, or says why not and returns the exit code.
func loadRun(fs *pflag.FlagSet, dirs []string, stderr io.Writer) (history.Run, report.Report, int) {
	name := fs.Name()
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "%s: give one RUN\n(see %s --help)\n", name, name)
		return history.Run{}, report.Report{}, exitUsage
	}
	run, ok := findRun(name, fs.Arg(0), dirs, stderr)
	if !ok {
		return run, report.Report{}, exitUsage
	}
	rep, err := history.Load(run)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", name, termsafe.Escape(err.Error()))
		return run, rep, exitHostError
	}
	return run, rep, exitOK
}

const showUsage = `Usage: wflow show RUN [--json] [--dir DIR]...

Prints a run's summary, as the end of wflow run does: its steps, its
outcome and where its records are. RUN is a run id (or its start), looked
for in ./runs and each --dir, or a run directory (its newest run). A run
still going shows the steps finished so far.

Flags:
`

func showCommand(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("wflow show", pflag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the run's report (JSON)")
	dirs := fs.StringArray("dir", nil, "a run directory or a folder of them to look for RUN in (default ./runs)")
	if code, done := parseFlags(fs, args, showUsage, stdout, stderr); done {
		return code
	}
	run, rep, code := loadRun(fs, *dirs, stderr)
	if code != exitOK {
		return code
	}
	if *asJSON {
		b, err := step.MarshalJSON(rep, true)
		if err != nil {
			fmt.Fprintf(stderr, "wflow show: %v\n", err)
			return exitHostError
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return exitOK
	}
	fmt.Fprintf(stdout, "run %s in %s\n", termsafe.Escape(rep.RunID), termsafe.Escape(rep.RunDir))
	fmt.Fprintf(stdout, "module:   %s\n", termsafe.Escape(rep.Module))
	fmt.Fprintf(stdout, "started:  %s\n", localTime(rep.Started))
	fmt.Fprintf(stdout, "duration: %s\n", (time.Duration(rep.DurationMS) * time.Millisecond).Round(time.Millisecond))
	if rep.Engine.Name != "" {
		fmt.Fprintf(stdout, "engine:   %s\n", termsafe.Escape(strings.TrimSpace(rep.Engine.Name+" "+rep.Engine.Version)))
	}
	fmt.Fprintln(stdout)
	report.Summary(stdout, rep.Steps)
	fmt.Fprintf(stdout, "\nworkflow %s", termsafe.Escape(rep.Status))
	if rep.Message != "" {
		fmt.Fprintf(stdout, ": %s", termsafe.Escape(rep.Message))
	}
	fmt.Fprintln(stdout)
	// The records' paths are the run id's (those the report names may have
	// been edited to lead anywhere); each is named when it is a regular
	// file of the run directory.
	root, err := os.OpenRoot(run.Dir)
	if err != nil {
		return exitOK
	}
	defer root.Close()
	for _, f := range []struct{ label, rel string }{
		{"report: ", report.RunPath(run.ID)}, {"html:   ", report.HTMLPath(run.ID)},
		{"trace:  ", trace.Path(run.ID)}, {"log:    ", journal.ModuleLogPath(run.ID)},
	} {
		if info, err := root.Lstat(f.rel); err == nil && info.Mode().IsRegular() {
			fmt.Fprintf(stdout, "%s%s\n", f.label, termsafe.Escape(filepath.Join(run.Dir, f.rel)))
		}
	}
	return exitOK
}

const reportUsage = `Usage: wflow report RUN [--html] [-o FILE] [--dir DIR]...

Writes a run's report: the JSON report (report.json), or with --html the
HTML page with its timeline (what every run writes as report.html), to
stdout or to FILE. RUN is as wflow show takes it.

Flags:
`

func reportCommand(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("wflow report", pflag.ContinueOnError)
	asHTML := fs.Bool("html", false, "write the HTML report")
	out := fs.StringP("output", "o", "", "write to FILE instead of stdout (an HTML report's links to the run's files are relative to it)")
	dirs := fs.StringArray("dir", nil, "a run directory or a folder of them to look for RUN in (default ./runs)")
	if code, done := parseFlags(fs, args, reportUsage, stdout, stderr); done {
		return code
	}
	run, rep, code := loadRun(fs, *dirs, stderr)
	if code != exitOK {
		return code
	}
	var err error
	var b bytes.Buffer
	if *asHTML {
		err = report.WriteHTML(&b, report.PageOf(run.Dir, rep, linkBase(run.Dir, *out)))
	} else {
		var j []byte
		j, err = step.MarshalJSON(rep, true)
		b.Write(append(j, '\n'))
	}
	if err != nil {
		fmt.Fprintf(stderr, "wflow report: %v\n", err)
		return exitHostError
	}
	if *out == "" {
		stdout.Write(b.Bytes())
		return exitOK
	}
	if err := os.WriteFile(*out, b.Bytes(), 0o644); err != nil {
		fmt.Fprintf(stderr, "wflow report: %v\n", err)
		return exitHostError
	}
	return exitOK
}

// linkBase is where the run directory is from a page written to out: a
// relative path from out's folder, or the run directory's absolute path
// (stdout, or no relative path), which the page makes file:// links of.
func linkBase(runDir, out string) string {
	if out != "" {
		if abs, err := filepath.Abs(out); err == nil {
			if rel, err := filepath.Rel(filepath.Dir(abs), runDir); err == nil {
				return filepath.ToSlash(rel)
			}
		}
	}
	return filepath.ToSlash(runDir)
}

const logsUsage = `Usage: wflow logs RUN [STEP] [-f] [--dir DIR]...

Without STEP: the module's log (what it printed and logged), with a line
for each step as it finished, in time order. With STEP (a step's name, or
its handle: 3 or #3): that step's output, its stdout to stdout and its
stderr to stderr; every attempt's, and every step's of that name. With -f,
follows a run that is still going until it ends (or STEP's step has
finished). RUN is as wflow show takes it.

Flags:
`

// followEvery is how often -f looks at the files again.
const followEvery = 250 * time.Millisecond

func logsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("wflow logs", pflag.ContinueOnError)
	follow := fs.BoolP("follow", "f", false, "follow a run that is still going")
	dirs := fs.StringArray("dir", nil, "a run directory or a folder of them to look for RUN in (default ./runs)")
	if code, done := parseFlags(fs, args, logsUsage, stdout, stderr); done {
		return code
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fmt.Fprint(stderr, "wflow logs: give RUN, and maybe STEP\n(see wflow logs --help)\n")
		return exitUsage
	}
	run, ok := findRun("wflow logs", fs.Arg(0), *dirs, stderr)
	if !ok {
		return exitUsage
	}
	l := &logPrinter{run: run, stdout: stdout, stderr: stderr, escapeOut: isTerminal(stdout), escapeErr: isTerminal(stderr), offsets: map[string]int64{}, headed: map[string]bool{}}
	var err error
	if fs.NArg() == 1 {
		err = l.moduleLog(ctx, *follow)
	} else {
		err = l.stepLog(ctx, fs.Arg(1), *follow)
	}
	switch {
	case errors.Is(err, errNoStep):
		fmt.Fprintf(stderr, "wflow logs: %s\n", termsafe.Escape(err.Error()))
		return exitUsage
	case ctx.Err() != nil:
		return exitInterrupted
	case err != nil:
		fmt.Fprintf(stderr, "wflow logs: %s\n", termsafe.Escape(err.Error()))
		return exitHostError
	}
	return exitOK
}
