package containers

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Labels that tie a container to the wflow process that started it, so that
// containers left by a process that died (SIGKILL, a crash, a power cut) can
// be found and removed by the next one.
const (
	LabelHost     = "io.wflow.host"     // hostname of the machine of the process
	LabelPIDStart = "io.wflow.pidstart" // start time of the process (Linux clock ticks), against pid reuse
)

var (
	processLabelsOnce sync.Once
	processLabels     map[string]string
)

// ProcessLabels returns the labels naming this process: LabelPID, LabelHost
// and, where /proc tells it, LabelPIDStart.
func ProcessLabels() map[string]string {
	processLabelsOnce.Do(func() {
		host, _ := os.Hostname()
		processLabels = map[string]string{LabelPID: strconv.Itoa(os.Getpid()), LabelHost: host}
		if start := processStart(os.Getpid()); start != "" {
			processLabels[LabelPIDStart] = start
		}
	})
	return processLabels
}

// processStart returns a process's start time from /proc/<pid>/stat (field
// 22), or "" when it cannot be read.
func processStart(pid int) string {
	_, start := processStat(pid)
	return start
}

// processStat returns a process's state (field 3: R, S, Z, ...) and start
// time (field 22) from /proc/<pid>/stat, or "" for what cannot be read.
func processStat(pid int) (state, start string) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", ""
	}
	// The command name (field 2) may hold spaces; fields count from its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", ""
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return "", ""
	}
	return fields[0], fields[19]
}

// ProcessAlive reports whether the process pid exists and, when start is not
// empty and can be checked, is the same process (not a reuse of its pid).
// A zombie (a process that has ended, not yet reaped by its parent) is not
// alive: it will never remove its containers.
func ProcessAlive(pid int, start string) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	state, now := processStat(pid)
	if state == "Z" || state == "X" {
		return false
	}
	return start == "" || now == "" || now == start
}

// Orphaned reports whether a container with these labels was started by a
// wflow process on this host that no longer runs. Containers of other hosts
// and containers without a process label are never orphans: wflow does not
// know their process.
func Orphaned(labels map[string]string, host string, alive func(pid int, start string) bool) bool {
	if _, ok := labels[LabelRun]; !ok || labels[LabelHost] != host {
		return false
	}
	pid, err := strconv.Atoi(labels[LabelPID])
	if err != nil {
		return false
	}
	return !alive(pid, labels[LabelPIDStart])
}

// Labelled is a container (or, on a swarm, a service or a network) and
// its labels.
type Labelled struct {
	ID string
	// Kind names what it is, for people: "" for a container; an engine that
	// lists other things (a swarm's services and networks) names them.
	Kind   string
	Labels map[string]string
}

// Lister lists and removes containers; containers/docker.Engine implements it.
type Lister interface {
	List(ctx context.Context, key string) ([]Labelled, error)
	Remove(ctx context.Context, id string) error
}

// RemoveOrphans removes every container labelled by a wflow process of this
// host that no longer runs, and returns those it removed and the runs they
// belonged to. It stops at the first engine error.
func RemoveOrphans(ctx context.Context, l Lister) (removed []Labelled, runs []string, err error) {
	host, _ := os.Hostname()
	list, err := l.List(ctx, LabelRun)
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	for _, c := range list {
		if !Orphaned(c.Labels, host, ProcessAlive) {
			continue
		}
		if err := l.Remove(ctx, c.ID); err != nil {
			return removed, runs, err
		}
		removed = append(removed, c)
		if run := c.Labels[LabelRun]; !seen[run] {
			seen[run] = true
			runs = append(runs, run)
		}
	}
	return removed, runs, nil
}
