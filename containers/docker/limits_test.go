package docker_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/internal/testenv"
	"github.com/wflow/wflow/step"
)

// cgroupValue prints a cgroup setting under v1 or v2, whichever the host has.
const cgroupValue = `v() { cat "/sys/fs/cgroup/$1" 2>/dev/null || cat "/sys/fs/cgroup/$2" 2>/dev/null || echo "?"; }; `

func TestLimitsReachTheContainer(t *testing.T) {
	e := testenv.Docker(t)
	r := newRunner(t, e)
	r.Defaults = step.Limits{Pids: 64}
	os.Chmod(r.RunDir, 0o777) // the step runs as another user than the test
	st := step.Step{Name: "limits", Image: image, Limits: step.Limits{CPUs: 1.5, Memory: 32 << 20, User: "1234:2345", ReadOnly: true},
		Commands: []step.Command{
			sh(cgroupValue + `v memory/memory.limit_in_bytes memory.max; v pids/pids.max pids.max; v cpu/cpu.cfs_quota_us cpu.max`),
			sh(`id -u; id -g; echo hi > owned.txt; echo tmp > /tmp/ok && cat /tmp/ok; touch /root-is-writable 2>/dev/null && echo writable || echo read-only`),
		}}
	res := r.Run(context.Background(), 1, st, containers.Live{})
	if !res.OK() {
		t.Fatalf("result %+v", res)
	}
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	want := []string{"33554432", "64", "150000", "1234", "2345", "tmp", "read-only"}
	if len(lines) != len(want) {
		t.Fatalf("stdout %q", res.Stdout)
	}
	for i, w := range want {
		// cgroup v2 prints "max 100000"-style values; compare the first field.
		if got := strings.Fields(lines[i])[0]; got != w && !(i == 2 && got == "150000") {
			t.Errorf("line %d = %q, want %q (stdout %q)", i, lines[i], w, res.Stdout)
		}
	}
	fi, err := os.Stat(filepath.Join(r.RunDir, "owned.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1234 || st.Gid != 2345 {
		t.Errorf("owned.txt belongs to %d:%d, want 1234:2345", st.Uid, st.Gid)
	}
}

func TestTimeoutKillsTheStep(t *testing.T) {
	e := testenv.Docker(t)
	r := newRunner(t, e)
	start := time.Now()
	res := r.Run(context.Background(), 1, step.Step{Name: "slow", Image: image, Limits: step.Limits{Timeout: step.Duration(time.Second)},
		Commands: []step.Command{sh("echo going; sleep 60"), sh("echo never")}}, containers.Live{})
	if res.ErrorKind != step.ErrorKindTimeout || res.ReturnCode != containers.TimeoutExitCode || !strings.Contains(res.Error, "timeout of 1s") {
		t.Errorf("result %+v", res)
	}
	if res.Stdout != "going\n" || len(res.Commands) != 1 {
		t.Errorf("stdout %q, commands %+v", res.Stdout, res.Commands)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %s", d)
	}
	assertRemoved(t, e, r)
}

func TestOOMIsNamed(t *testing.T) {
	e := testenv.Docker(t)
	r := newRunner(t, e)
	res := r.Run(context.Background(), 1, step.Step{Name: "hungry", Image: image, Limits: step.Limits{Memory: 16 << 20},
		Commands: []step.Command{sh(`x=$(head -c 64000000 /dev/zero | tr "\0" a); echo ${#x}`)}}, containers.Live{})
	if res.ErrorKind != step.ErrorKindOOM || res.ReturnCode != 137 || !strings.Contains(res.Error, "OOM killer at the step's memory limit of 16 MiB") {
		t.Errorf("result %+v", res)
	}
	assertRemoved(t, e, r)
}

// TestAllowedNetworkIsGiven: a step the policies admitted with the run's
// network gets it (cmd/wflow's TestNetworkMustBeAllowed: the refusal).
func TestAllowedNetworkIsGiven(t *testing.T) {
	e := testenv.Docker(t)
	r := newRunner(t, e)
	r.Defaults.Network = "bridge"
	res := r.Run(context.Background(), 2, step.Step{Name: "net", Image: image, Limits: step.Limits{Network: "bridge"},
		Commands: []step.Command{sh("ls /sys/class/net | grep -c eth0")}}, containers.Live{})
	if !res.OK() || res.Stdout != "1\n" {
		t.Errorf("with --network bridge: %+v", res)
	}
	assertRemoved(t, e, r)
}

func TestRetriesRecordEveryAttempt(t *testing.T) {
	e := testenv.Docker(t)
	// Fails on its first two runs, succeeds on the third.
	flaky := sh(`n=$(cat tries 2>/dev/null || echo 0); n=$((n+1)); echo $n > tries; echo try $n; [ $n -ge 3 ]`)
	t.Run("until success", func(t *testing.T) {
		r := newRunner(t, e)
		res := r.Run(context.Background(), 1, step.Step{Name: "flaky", Image: image, Commands: []step.Command{flaky},
			Retry: &step.Retry{Retries: 5, Initial: step.Duration(10 * time.Millisecond)}}, containers.Live{})
		if !res.OK() || len(res.Attempts) != 3 || res.Stdout != "try 3\n" {
			t.Fatalf("result %+v", res)
		}
		for i, a := range res.Attempts {
			wantRC := 1
			if i == 2 {
				wantRC = 0
			}
			if a.Attempt != i+1 || a.ReturnCode != wantRC {
				t.Errorf("attempt %d: %+v", i+1, a)
			}
			b, _ := os.ReadFile(filepath.Join(r.RunDir, a.StdoutFile))
			if string(b) != "try "+string(rune('1'+i))+"\n" {
				t.Errorf("attempt %d stdout file %s = %q", i+1, a.StdoutFile, b)
			}
		}
		if res.StdoutFile != res.Attempts[2].StdoutFile {
			t.Errorf("the result's files are not the last attempt's")
		}
	})
	t.Run("exit code not listed", func(t *testing.T) {
		r := newRunner(t, e)
		res := r.Run(context.Background(), 1, step.Step{Name: "flaky", Image: image, Commands: []step.Command{flaky},
			Retry: &step.Retry{Retries: 5, OnExitCodes: []int{75}}}, containers.Live{})
		if res.ReturnCode != 1 || len(res.Attempts) != 1 {
			t.Errorf("result %+v", res)
		}
	})
	t.Run("retries run out", func(t *testing.T) {
		r := newRunner(t, e)
		res := r.Run(context.Background(), 1, step.Step{Name: "flaky", Image: image, Commands: []step.Command{flaky},
			Retry: &step.Retry{Retries: 1, Initial: step.Duration(time.Millisecond)}}, containers.Live{})
		if res.ReturnCode != 1 || len(res.Attempts) != 2 {
			t.Errorf("result %+v", res)
		}
		assertRemoved(t, e, r)
	})
}
