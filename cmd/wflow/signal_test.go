package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wflow/wflow/internal/testenv"
)

// TestSIGINTStopsARunningStep sends SIGINT to a real wflow process while a
// step runs, and checks the exit code, the report and that no container remains.
func TestSIGINTStopsARunningStep(t *testing.T) {
	e := testenv.Docker(t)
	bin := testenv.Wflow(t)
	module := testenv.GoGuest(t, "./testdata/guests/sleepy")
	rundir := t.TempDir()
	cmd := exec.Command(bin, "run", module, "--rundir", rundir)
	took := interruptWhen(t, cmd, "[sleepy] zzz", 0, 30*time.Second)
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Errorf("exit code %d, want %d", code, exitInterrupted)
	}
	t.Logf("exited %s after SIGINT", took)
	r := readReport(t, rundir)
	if r.Status != "cancelled" || len(r.Steps) != 1 || r.Steps[0].ErrorKind != "cancelled" {
		t.Errorf("report status %s, steps %+v", r.Status, r.Steps)
	}
	ids, err := e.Labelled(context.Background(), "io.wflow.run", r.RunID)
	if err != nil || len(ids) != 0 {
		t.Errorf("containers of the run remain: %v %v", ids, err)
	}
}

// TestSIGKILLLeavesOrphansTheNextStartRemoves kills a real wflow process
// mid-step (so it cannot clean up), shows that the result already produced
// survives in the run's journal, and that `wflow gc` and the next `wflow
// run` remove the containers it left.
func TestSIGKILLLeavesOrphansTheNextStartRemoves(t *testing.T) {
	e := testenv.Docker(t)
	bin := testenv.Wflow(t)
	module := testenv.GoGuest(t, "./testdata/guests/twostep")
	for _, next := range []string{"gc", "run"} {
		t.Run(next, func(t *testing.T) {
			rundir := t.TempDir()
			cmd := exec.Command(bin, "run", module, "--rundir", rundir)
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(out)
			for lines.Scan() && !strings.Contains(lines.Text(), "[sleepy] zzz") {
			}
			cmd.Process.Kill()
			cmd.Wait()
			// The result that landed before the kill survives in the journal.
			journal, err := readJournal(t, rundir, "")
			if err != nil || strings.Count(string(journal), "\n") != 1 || !strings.Contains(string(journal), `"step":"quick"`) || !strings.Contains(string(journal), `"stdout":"landed\n"`) {
				t.Errorf("journal after SIGKILL: %q, %v", journal, err)
			}
			ids, _ := e.Labelled(context.Background(), "io.wflow.pid", strconv.Itoa(cmd.Process.Pid))
			if len(ids) != 1 {
				t.Fatalf("%d containers of the killed process, want 1 (its running step)", len(ids))
			}
			var code int
			var stdout, stderr string
			if next == "gc" {
				code, stdout, stderr = wflow(t, "gc")
			} else {
				code, stdout, stderr = wflow(t, "run", watFile(t, "testdata/hello.wat"), "--rundir", t.TempDir())
			}
			if code != exitOK || !strings.Contains(stdout, "removed 1 container(s) left by wflow processes that no longer run") {
				t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			if ids, _ := e.Labelled(context.Background(), "io.wflow.pid", strconv.Itoa(cmd.Process.Pid)); len(ids) != 0 {
				t.Errorf("orphans remain: %v", ids)
			}
		})
	}
}

func TestSecondSignalQuitsAtOnce(t *testing.T) {
	signals := make(chan os.Signal, 2)
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	var stderr strings.Builder
	go onSignals(signals, cancel, &stderr, func(code int) { exited <- code })
	signals <- syscall.SIGINT
	<-ctx.Done() // the first cancels the run...
	select {
	case <-exited:
		t.Fatal("quit at the first signal")
	case <-time.After(50 * time.Millisecond):
	}
	signals <- syscall.SIGTERM
	select { // ...the second quits
	case code := <-exited:
		if code != exitInterrupted {
			t.Errorf("exit code %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second signal did not quit")
	}
}

// TestSIGINTEndsASleepingModule: a module asleep in one WASI poll_oneoff of
// 2^63 ns ends within a second of SIGINT (wazero's own sleep could not be
// cut short), with its report.
func TestSIGINTEndsASleepingModule(t *testing.T) {
	testenv.Docker(t)
	bin := testenv.Wflow(t)
	rundir := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(bin, "run", watFile(t, "testdata/hostile/long_sleep.wat"), "--rundir", rundir, "--json")
	// 200 ms after the run starts: into the sleep.
	if d := interruptWhen(t, cmd, `"run_started"`, 200*time.Millisecond, 10*time.Second); d > time.Second {
		t.Errorf("exited %s after SIGINT, want within 1s", d)
	}
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Errorf("exit code %d, want %d", code, exitInterrupted)
	}
	if r := readReport(t, rundir); r.Status != "cancelled" {
		t.Errorf("report status %s", r.Status)
	}
}

// TestInterruptDuringStartUp: SIGINT while wflow sets up (compiling, asking
// the daemon) is an interrupted run, exit 130, not "no daemon answers".
func TestInterruptDuringStartUp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as the first signal would
	rundir := filepath.Join(t.TempDir(), "run")
	var stdout, stderr strings.Builder
	code := run(ctx, []string{"run", watFile(t, "testdata/hello.wat"), "--rundir", rundir}, &stdout, &stderr)
	if code != exitInterrupted || !strings.Contains(stderr.String(), "interrupted before the run started") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
	if _, err := os.Stat(rundir); err == nil {
		t.Error("an interrupted start-up left a run directory")
	}
}

// interruptWhen starts cmd, waits for a line of its output holding marker,
// and after delay sends SIGINT; it waits at most limit for cmd to exit (and
// fails the test past it) and returns how long the exit took after the signal.
func interruptWhen(t *testing.T, cmd *exec.Cmd, marker string, delay, limit time.Duration) time.Duration {
	t.Helper()
	return signalAt(t, cmd, marker, delay, syscall.SIGINT, limit)
}

// signalAt starts cmd, waits for a line of its output containing marker,
// waits delay more, sends sig and waits at most limit for the process to
// end (failing the test past it); it returns how long that took.
func signalAt(t *testing.T, cmd *exec.Cmd, marker string, delay time.Duration, sig syscall.Signal, limit time.Duration) time.Duration {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	seen := false
	for !seen && lines.Scan() {
		seen = strings.Contains(lines.Text(), marker)
	}
	if !seen {
		cmd.Wait()
		t.Fatalf("wflow ended before printing %q", marker)
	}
	time.Sleep(delay)
	start := time.Now()
	cmd.Process.Signal(sig)
	go func() {
		for lines.Scan() {
		}
	}()
	done := make(chan error)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(limit):
		cmd.Process.Kill()
		t.Fatalf("wflow did not exit within %s of %v", limit, sig)
	}
	return time.Since(start)
}
