package containers

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestOrphaned(t *testing.T) {
	alive := func(pid int, start string) bool { return pid == 10 && (start == "" || start == "100") }
	base := func(kv ...string) map[string]string {
		m := map[string]string{LabelRun: "r", LabelHost: "h"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name   string
		labels map[string]string
		want   bool
	}{
		{"live process", base(LabelPID, "10"), false},
		{"live process, same start", base(LabelPID, "10", LabelPIDStart, "100"), false},
		{"pid reused by another process", base(LabelPID, "10", LabelPIDStart, "99"), true},
		{"dead process", base(LabelPID, "11"), true},
		{"another host", map[string]string{LabelRun: "r", LabelHost: "other", LabelPID: "11"}, false},
		{"no pid", base(), false},
		{"garbage pid", base(LabelPID, "x"), false},
		{"not wflow's", map[string]string{LabelHost: "h", LabelPID: "11"}, false},
	}
	for _, c := range cases {
		if got := Orphaned(c.labels, "h", alive); got != c.want {
			t.Errorf("%s: Orphaned = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestProcessAlive(t *testing.T) {
	me := ProcessLabels()
	if me[LabelPID] != strconv.Itoa(os.Getpid()) || me[LabelHost] == "" {
		t.Fatalf("labels %v", me)
	}
	if !ProcessAlive(os.Getpid(), me[LabelPIDStart]) {
		t.Error("this process is not alive")
	}
	if me[LabelPIDStart] != "" && ProcessAlive(os.Getpid(), me[LabelPIDStart]+"1") {
		t.Error("a different start time was taken for the same process")
	}
	if ProcessAlive(1<<30, "") || ProcessAlive(0, "") || ProcessAlive(-1, "") {
		t.Error("a process that cannot exist is alive")
	}
}

// A wflow killed while its parent does not reap it stays a zombie: it is
// gone all the same, and its containers are orphans.
func TestZombieIsNotAlive(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	start := processStart(pid)
	for i := 0; i < 200; i++ { // until it has exited (a zombie: not waited for yet)
		if state, _ := processStat(pid); state == "Z" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ProcessAlive(pid, start) {
		t.Error("a zombie counts as alive")
	}
	cmd.Wait()
	if !ProcessAlive(os.Getpid(), processStart(os.Getpid())) {
		t.Error("this very process counts as dead")
	}
}

// fakeLister is a Lister over a fixed list; Remove fails for failID.
type fakeLister struct {
	list    []Labelled
	removed []string
	failID  string
	listErr error
}

func (f *fakeLister) List(_ context.Context, key string) ([]Labelled, error) {
	var out []Labelled
	for _, c := range f.list {
		if _, ok := c.Labels[key]; ok {
			out = append(out, c)
		}
	}
	return out, f.listErr
}

func (f *fakeLister) Remove(_ context.Context, id string) error {
	if id == f.failID {
		return errors.New("engine busy")
	}
	f.removed = append(f.removed, id)
	return nil
}

// TestRemoveOrphans: containers of dead wflow processes of this host go,
// once each, with their runs named; live processes', other hosts' and
// unlabelled containers stay; an engine error stops the removal and is
// returned.
func TestRemoveOrphans(t *testing.T) {
	host, _ := os.Hostname()
	me := strconv.Itoa(os.Getpid())
	labels := func(run, h, pid string) map[string]string {
		return map[string]string{LabelRun: run, LabelHost: h, LabelPID: pid}
	}
	dead := "999999999" // above any pid_max
	l := &fakeLister{list: []Labelled{
		{ID: "orphan-1", Labels: labels("r1", host, dead)},
		{ID: "orphan-2", Labels: labels("r1", host, dead)},
		{ID: "orphan-3", Labels: labels("r2", host, dead)},
		{ID: "live", Labels: labels("r3", host, me)},
		{ID: "elsewhere", Labels: labels("r4", "another-host", dead)},
		{ID: "not-wflows", Labels: map[string]string{"other": "x"}},
	}}
	removed, runs, err := RemoveOrphans(context.Background(), l)
	if n := len(removed); err != nil || n != 3 || strings.Join(l.removed, ",") != "orphan-1,orphan-2,orphan-3" || strings.Join(runs, ",") != "r1,r2" {
		t.Errorf("removed %v %v, runs %v, err %v", removed, l.removed, runs, err)
	}
	l = &fakeLister{list: l.list, failID: "orphan-2"}
	if removed, _, err := RemoveOrphans(context.Background(), l); err == nil || len(removed) != 1 || removed[0].ID != "orphan-1" {
		t.Errorf("with a failing removal: removed %v, err %v", removed, err)
	}
	l = &fakeLister{listErr: errors.New("no daemon")}
	if _, _, err := RemoveOrphans(context.Background(), l); err == nil {
		t.Error("a listing error was not returned")
	}
}
