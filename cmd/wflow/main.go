// Command wflow runs workflows whose logic is a WebAssembly module and whose
// steps are containers on the local Docker engine (or Podman, a swarm,
// Kubernetes: --engine).
//
//	wflow run MODULE.wasm [-p key=value]...   run a workflow
//	wflow validate MODULE.wasm                list a module's imports, name what wflow lacks
//	wflow gc                                  remove containers left by wflow processes that died
//	wflow version                             print the version and ABI
//
// Exit codes are documented in docs/cli.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/pflag"
)

// Exit codes of wflow.
const (
	exitOK          = 0   // the workflow succeeded
	exitFailed      = 1   // the workflow failed: the module exited non-zero, trapped or timed out
	exitUsage       = 2   // bad flags or arguments, an unreadable or invalid module
	exitNoEngine    = 3   // the engine is not there (no daemon answers, not a swarm manager)
	exitHostError   = 4   // wflow itself failed (run directory, report)
	exitInterrupted = 130 // cancelled by SIGINT or SIGTERM
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise
// it comes from the module's build info.
var version = ""

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go onSignals(signals, cancel, os.Stderr, os.Exit)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	os.Exit(code)
}

const usage = `wflow runs workflows written as WebAssembly modules; their steps are containers.

Usage:
  wflow run MODULE.wasm [flags]   run a workflow (wflow run --help)
  wflow validate MODULE.wasm      check a module's imports against this wflow's ABI
  wflow replay RUNDIR [MODULE.wasm]
                                  run a module against a run's journal, with no engine
  wflow runs [DIR...]             list runs, newest first (in ./runs by default)
  wflow show RUN                  a run's summary: its steps, outcome and records
  wflow logs RUN [STEP] [-f]      the module's log, or a step's output; -f follows a live run
  wflow report RUN [--html]       a run's report, JSON or the HTML page with its timeline
  wflow gc                        remove containers left by wflow processes that died
  wflow cache ls|show KEY|prune   list, show or prune the step cache (wflow cache --help)
  wflow policy test POLICY --step STEP.json
                                  run a policy on a step and print its decision
  wflow notebook build [-r REQ]...  build a notebook image ahead of a run
  wflow init [--lang LANG] DIR    create a workflow project (go, c, rust, assemblyscript)
  wflow version                   print wflow's version and ABI version
  wflow help                      print this help

Exit codes: 0 success, 1 workflow failed, 2 usage or invalid module,
3 no Docker engine, 4 wflow failed, 130 interrupted.
`

// onSignals cancels the run at the first signal, so that steps are stopped
// and their containers removed, and quits at once at the second.
func onSignals(signals <-chan os.Signal, cancel context.CancelFunc, stderr io.Writer, exit func(int)) {
	<-signals
	fmt.Fprintln(stderr, "wflow: interrupted: stopping steps and removing their containers (interrupt again to quit at once)")
	cancel()
	<-signals
	fmt.Fprintln(stderr, "wflow: interrupted twice: quitting now; `wflow gc` removes what is left")
	exit(exitInterrupted)
}

// run is the whole CLI; main only wires the process to it, so tests run it in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return runCommand(ctx, args[1:], stdout, stderr)
	case "validate":
		return validateCommand(ctx, args[1:], stdout, stderr)
	case "replay":
		return replayCommand(ctx, args[1:], stdout, stderr)
	case "cache":
		return cacheCommand(args[1:], stdout, stderr)
	case "runs":
		return runsCommand(args[1:], stdout, stderr)
	case "show":
		return showCommand(args[1:], stdout, stderr)
	case "logs":
		return logsCommand(ctx, args[1:], stdout, stderr)
	case "report":
		return reportCommand(args[1:], stdout, stderr)
	case "gc":
		return gcCommand(ctx, args[1:], stdout, stderr)
	case "policy":
		return policyCommand(ctx, args[1:], stdout, stderr)
	case "notebook":
		return notebookCommand(ctx, args[1:], stdout, stderr)
	case "init":
		return initCommand(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		return versionCommand(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "wflow: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

// parseFlags parses a command's flags. On --help it prints usage and the
// flags to stdout; on a bad flag, one line to stderr. done says the command
// must return code at once.
func parseFlags(fs *pflag.FlagSet, args []string, usage string, stdout, stderr io.Writer) (code int, done bool) {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, pflag.ErrHelp):
		fmt.Fprint(stdout, usage+fs.FlagUsages())
		return exitOK, true
	}
	fmt.Fprintf(stderr, "%s: %v\n(see %s --help)\n", fs.Name(), err, fs.Name())
	return exitUsage, true
}

func wflowVersion() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

// Caps on the files the command line names: they are the user's, but a
// typo (/dev/zero, a log file) must give an error, not eat the machine.
const (
	maxModuleFile = 512 << 20 // a .wasm module or policy
	maxSmallFile  = 16 << 20  // --params, --step, templates, requirements
)

// readInput reads a file named on the command line, refusing one over max
// bytes (read as far as max+1, so a device or a FIFO that never ends does not
// hang or grow wflow).
func readInput(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// One buffer of the file's size, not io.ReadAll's doublings: a Go module
	// is megabytes, and each doubling copies and clears it again.
	size := int64(512)
	if info, err := f.Stat(); err == nil && info.Mode().IsRegular() && info.Size() > 0 {
		size = min(info.Size(), max) + 1 // +1: room to see the end, or one byte over max
	}
	b := make([]byte, 0, size)
	for int64(len(b)) <= max {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%s: over %d MiB", name, max>>20)
}
