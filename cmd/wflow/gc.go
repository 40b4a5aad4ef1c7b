package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/containers/engines"
	"github.com/wflow/wflow/notebooks"
	"github.com/wflow/wflow/rundir"
)

const gcUsage = `Usage: wflow gc [--images] [--engine NAME]

Removes the containers that wflow processes of this host started and left
behind when they died (SIGKILL, a crash): containers labelled io.wflow.run
whose io.wflow.pid process no longer runs (on a swarm, also their services
and their runs' networks). wflow run does the same when it
starts. Containers of live wflow processes and of other hosts are kept.
Then releases the nosuid mounts of run directories of such processes.
With --images, also removes the notebook images (wflow-notebook:<hash>) no
container uses; a run that needs one builds it again.

Flags:
`

func gcCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("wflow gc", pflag.ContinueOnError)
	images := fs.Bool("images", false, "also remove notebook images no container uses")
	engineName := fs.String("engine", "", "the engine to clean: "+engineUsage+" (default: $WFLOW_ENGINE, else docker); on a swarm, also services and their runs' networks; on kubernetes, Jobs, pods and NetworkPolicies")
	var opts engines.Options
	addKubernetesFlags(fs, &opts, false)
	if code, done := parseFlags(fs, args, gcUsage, stdout, stderr); done {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "wflow gc: takes no arguments\n")
		return exitUsage
	}
	name, err := engines.Resolve(*engineName)
	if err != nil {
		fmt.Fprintf(stderr, "wflow gc: %v\n", err)
		return exitUsage
	}
	if err := checkEngineOptions(name, opts, false); err != nil {
		fmt.Fprintf(stderr, "wflow gc: %v\n", err)
		return exitUsage
	}
	engine, err := engines.Open(ctx, name, opts)
	if err != nil {
		fmt.Fprintf(stderr, "wflow gc: %v\n", err)
		return exitNoEngine
	}
	defer engine.Close()
	left, err := removeLeftovers(ctx, engine, 0, nil, "")
	for _, line := range left.lines(true) {
		fmt.Fprintln(stdout, line)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wflow gc: %v\n", err)
		return exitHostError
	}
	if *images {
		removed, err := engine.PruneImages(ctx, notebooks.LabelNotebook)
		fmt.Fprintf(stdout, "removed %d notebook image(s) no container uses\n", len(removed))
		if err != nil {
			fmt.Fprintf(stderr, "wflow gc: %v\n", err)
			return exitHostError
		}
	}
	return exitOK
}

// guardStateDir records the run directories wflow mounted nosuid,nodev
// (only root may), so that the mounts of a killed process are released.
const guardStateDir = "/run/wflow/guards"

// processOwner names this process as the labels of its containers do:
// pid-start.
func processOwner() string {
	l := containers.ProcessLabels()
	return l[containers.LabelPID] + "-" + l[containers.LabelPIDStart]
}

// ownerAlive reports whether the process a processOwner string names runs.
func ownerAlive(owner string) bool {
	pid, start, _ := strings.Cut(owner, "-")
	n, err := strconv.Atoi(pid)
	return err == nil && containers.ProcessAlive(n, start)
}

// leftovers is what removeLeftovers removed.
type leftovers struct {
	removed  []containers.Labelled // containers (and a swarm's services and networks) removed
	runs     []string              // the runs they belonged to
	released []string              // run directories whose nosuid mount was released
}

// lines says what was removed; with always, also that no container was.
func (l leftovers) lines(always bool) []string {
	var out []string
	if len(l.removed) > 0 || always {
		out = append(out, fmt.Sprintf("removed %s left by wflow processes that no longer run%s", countKinds(l.removed), runList(l.runs)))
	}
	if len(l.released) > 0 {
		out = append(out, fmt.Sprintf("released the nosuid mount of %d run directory(ies) whose wflow process no longer runs: %s",
			len(l.released), strings.Join(l.released, ", ")))
	}
	return out
}

// countKinds says how many of each kind there are, containers first:
// "2 container(s)", "1 container(s), 1 swarm service(s), 1 network(s)".
func countKinds(removed []containers.Labelled) string {
	kinds, counts := []string{"container"}, map[string]int{}
	for _, r := range removed {
		kind := r.Kind
		if kind == "" {
			kind = "container"
		}
		if _, ok := counts[kind]; !ok && kind != "container" {
			kinds = append(kinds, kind)
		}
		counts[kind]++
	}
	var parts []string
	for _, k := range kinds {
		if counts[k] > 0 || (k == "container" && len(removed) == 0) {
			parts = append(parts, fmt.Sprintf("%d %s(s)", counts[k], k))
		}
	}
	return strings.Join(parts, ", ")
}

// errOrphansLeft is wrapped by removeLeftovers when containers of dead
// processes could not be removed.
var errOrphansLeft = errors.New("removing orphaned containers")

// removeLeftovers removes what wflow processes that died left: their
// containers, then the nosuid mounts of their run directories (only once
// their containers are gone: until then a step may still write there),
// sweeping their setuid bits first for at most sweep (0: as long as ctx
// lasts); a mount whose sweep does not finish stays for a later gc.
//
// between runs between the two steps, once the containers are gone and
// before any mount is released: `wflow run` takes its own run directory
// there (its lock; mine names it), so that no other run can be using it when
// the mount a dead run left on it is released, and mounts its own after;
// other processes leave the mounts of a locked run directory alone.
func removeLeftovers(ctx context.Context, l containers.Lister, sweep time.Duration, between func(), mine string) (leftovers, error) {
	var left leftovers
	var err error
	left.removed, left.runs, err = containers.RemoveOrphans(ctx, l)
	if between != nil {
		between()
	}
	if err != nil {
		return left, fmt.Errorf("%w: %w", errOrphansLeft, err)
	}
	if sweep > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, sweep)
		defer cancel()
	}
	left.released, err = rundir.ReapGuards(ctx, guardStateDir, ownerAlive, mine)
	if err != nil {
		return left, fmt.Errorf("releasing run directory mounts: %w", err)
	}
	return left, nil
}

func runList(runs []string) string {
	if len(runs) == 0 {
		return ""
	}
	return " (runs " + strings.Join(runs, ", ") + ")"
}
