package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/containers/docker"
	"github.com/wflow/wflow/internal/testenv"
)

// servicesRunDir is a run directory holding the page the guest's web
// service serves.
func servicesRunDir(t *testing.T) string {
	rundir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(rundir, "site"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(rundir, "site", "hello.txt"), []byte("hello-from-web\n"), 0o644)
	return rundir
}

// leftOf lists what of the run (containers, its network) is still on the engine.
func leftOf(t *testing.T, e *docker.Engine, runID string) []string {
	t.Helper()
	all, err := e.List(context.Background(), containers.LabelRun)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, l := range all {
		if l.Labels[containers.LabelRun] == runID {
			left = append(left, l.Kind+" "+l.ID)
		}
	}
	return left
}

// TestServices: a Python web server from the test image, ready by its
// port, is reached by name from a step on the run's network and not from
// a step without it, nor can a step there reach outside; stopped, it is
// gone. A job container runs 20 commands with exec, one past its timeout
// (its processes killed), one cancelled while it runs; a service that never
// gets ready fails with its check's output; a name is one service at a
// time. The job container left running is stopped at the end: nothing of
// the run remains.
func TestServices(t *testing.T) {
	e := testenv.Docker(t)
	guest := testenv.GoGuest(t, "./testdata/guests/services")
	rundir := servicesRunDir(t)
	// A server of the host, on every address: no step may reach it.
	host, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	go http.Serve(host, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("host-secret")) }))
	port := strconv.Itoa(host.Addr().(*net.TCPAddr).Port)
	code, stdout, stderr := wflow(t, "run", guest, "--rundir", rundir, "-p", "hostport="+port, "-p", "hostip="+hostIP(t))
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	r := readReport(t, rundir)
	var out struct {
		HostReached      bool `json:"host_reached"`
		Reached          string
		IsolatedReached  bool `json:"isolated_reached"`
		OutsideReached   bool `json:"outside_reached"`
		AfterStopReached bool `json:"after_stop_reached"`
		ExecsOK          int  `json:"execs_ok"`
		Counted          int
		Slow             string
		WaitErr          string `json:"wait_err"`
		Cancelled        string
		SleepsLeft       string `json:"sleeps_left"`
		Fails            int
		Never, Twice     string
	}
	if err := json.Unmarshal(r.Output, &out); err != nil {
		t.Fatalf("output %s: %v", r.Output, err)
	}
	checks := []struct {
		ok   bool
		what string
	}{
		{out.Reached == "hello-from-web", "a step on the run's network reaches the service by name"},
		{!out.IsolatedReached && strings.Contains(string(r.Output), `"isolated_reached":false`), "a step without the run's network does not reach it"},
		{!out.HostReached && strings.Contains(string(r.Output), `"host_reached":false`), "a step on the run's network does not reach the host on its bridge"},
		{!out.OutsideReached && strings.Contains(string(r.Output), `"outside_reached":false`), "a step on the run's network does not reach the host's own address"},
		{!out.AfterStopReached, "a stopped service is gone"},
		{out.ExecsOK == 20 && out.Counted == 20, "20 execs ran in the job container"},
		{out.Slow == "timeout", "an exec past its timeout is killed with error kind timeout"},
		{out.WaitErr == "context deadline exceeded" && out.Cancelled == "cancelled", "a running exec is cancelled"},
		{out.SleepsLeft == "0", "no process of the timed-out or cancelled exec is left in the container"},
		{out.Fails == 4, "an exec's exit code is its result's"},
		{strings.Contains(out.Never, "service_failed: service never: not ready within 1s; its last check exited 1: not yet"), "a service never ready fails, quoting its check"},
		{strings.Contains(out.Twice, "a service named job runs already"), "one service per name"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: output %s", c.what, r.Output)
		}
	}
	for _, line := range []string{"service web (wflow-test/python) is ready after", "service job stopped"} {
		if !strings.Contains(stdout, line) {
			t.Errorf("the console does not say %q:\n%s", line, stdout)
		}
	}
	if left := leftOf(t, e, r.RunID); len(left) != 0 {
		t.Errorf("left on the engine: %v", left)
	}
}

// TestServicesStoppedOnSIGINT: an interrupted run stops its services and
// removes its network; after SIGKILL, wflow gc does.
func TestServicesStoppedOnSIGINT(t *testing.T) {
	e := testenv.Docker(t)
	bin := testenv.Wflow(t)
	guest := testenv.GoGuest(t, "./testdata/guests/services")
	rundir := servicesRunDir(t)
	cmd := exec.Command(bin, "run", guest, "--rundir", rundir, "-p", "case=hold")
	interruptWhen(t, cmd, "[hold] started", 500*time.Millisecond, 60*time.Second)
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Errorf("exit code %d, want %d", code, exitInterrupted)
	}
	r := readReport(t, rundir)
	if left := leftOf(t, e, r.RunID); len(left) != 0 {
		t.Errorf("left on the engine after SIGINT: %v", left)
	}

	rundir = servicesRunDir(t)
	cmd = exec.Command(bin, "run", guest, "--rundir", rundir, "-p", "case=hold")
	signalAt(t, cmd, "[hold] started", 500*time.Millisecond, 9, 60*time.Second)
	code, stdout, stderr := wflow(t, "gc")
	if code != exitOK || !strings.Contains(stdout, "1 network") {
		t.Errorf("gc: exit %d\n%s\n%s", code, stdout, stderr)
	}
	all, _ := e.List(context.Background(), containers.LabelPID)
	for _, l := range all {
		if l.Labels[containers.LabelPID] == strconv.Itoa(cmd.Process.Pid) {
			t.Errorf("left after SIGKILL and gc: %s %s", l.Kind, l.ID)
		}
	}
}

// TestCHeaderServices: wflow.h's service functions; what one exec leaves
// in the job container is there for the next.
func TestCHeaderServices(t *testing.T) {
	testenv.Docker(t)
	guest := testenv.CGuest(t, "testdata/guests/cservice/main.c")
	rundir := t.TempDir()
	code, stdout, stderr := wflow(t, "run", guest, "--rundir", rundir)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if out := string(readReport(t, rundir).Output); out != `{"stdout":"kept","service":"cjob","stop":0,"stop_again":6}` {
		t.Errorf("output %s", out)
	}
}

// hostIP is an IPv4 address of this host off the loopback, where the
// test's server also listens.
func hostIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !strings.HasPrefix(n.IP.String(), "172.17.") {
			return n.IP.String()
		}
	}
	t.Fatal("no IPv4 address off the loopback to test with")
	return ""
}
