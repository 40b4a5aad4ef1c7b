package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wflow/wflow/internal/testenv"
)

// TestHostileModules runs every module of testdata/hostile through `wflow
// run`. Each tries one thing a workflow module should not be able to get
// away with; each must end with a clear outcome within its limit, with the
// host intact and no container left. Modules that probe an ABI error exit
// with the errno they received, so the exit code proves the errno.
func TestHostileModules(t *testing.T) {
	e := testenv.Docker(t)
	cases := []struct {
		module string
		args   []string
		exit   int           // wflow's exit code
		status string        // the report's status; "" when no run starts
		code   uint32        // the module's exit code in the report
		msg    string        // in the report's message, or in stderr when no run starts
		steps  int           // steps in the report
		within time.Duration // the run must end this fast (default 30s)
	}{
		{module: "oob_pointer", exit: exitFailed, status: "failed", code: 1},
		{module: "len_near_4g", exit: exitFailed, status: "failed", code: 2},
		{module: "len_past_cap", exit: exitFailed, status: "failed", code: 2},
		{module: "ptr_wraps", exit: exitFailed, status: "failed", code: 1},
		{module: "handle_ptr_oob", exit: exitFailed, status: "failed", code: 1},
		{module: "invalid_utf8", exit: exitFailed, status: "failed", code: 3},
		{module: "invalid_json", exit: exitFailed, status: "failed", code: 3},
		{module: "deep_json", exit: exitFailed, status: "failed", code: 3},
		{module: "unknown_field", exit: exitFailed, status: "failed", code: 4},
		{module: "unknown_var", exit: exitFailed, status: "failed", code: 4},
		{module: "wait_foreign", exit: exitFailed, status: "failed", code: 6},
		{module: "wait_zero", exit: exitFailed, status: "failed", code: 9},
		{module: "wait_huge_count", exit: exitFailed, status: "failed", code: 2},
		{module: "wait_freed", exit: exitFailed, status: "failed", code: 6, steps: 1},
		{module: "result_pending", exit: exitFailed, status: "failed", code: 7, steps: 1},
		{module: "result_small_buffer", exit: exitFailed, status: "failed", code: 5, steps: 1},
		{module: "log_bad_level", exit: exitFailed, status: "failed", code: 9},
		{module: "log_too_long", exit: exitFailed, status: "failed", code: 2},
		{module: "output_invalid", exit: exitFailed, status: "failed", code: 3},
		{module: "error_get_oob", exit: exitFailed, status: "failed", code: 1},
		{module: "no_memory", exit: exitFailed, status: "failed", code: 1},
		{module: "params_huge_cap", exit: exitOK, status: "succeeded"},
		{module: "concurrent_waits", exit: exitOK, status: "succeeded", steps: 1},
		{module: "huge_logs", exit: exitOK, status: "succeeded"},
		{module: "exit_code", exit: exitFailed, status: "failed", code: 7, msg: "exited with code 7"},
		{module: "trap", exit: exitFailed, status: "trapped", code: 1, msg: "unreachable"},
		{module: "deep_recursion", exit: exitFailed, status: "trapped", code: 1, msg: "stack overflow"},
		{module: "loop", args: []string{"--timeout", "1s"}, exit: exitFailed, status: "timeout", code: 1, msg: "wall-clock limit of 1s"},
		{module: "long_sleep", args: []string{"--timeout", "1s"}, exit: exitFailed, status: "timeout", code: 1, msg: "wall-clock limit of 1s", within: 5 * time.Second},
		{module: "grow_bomb", args: []string{"--max-memory", "1"}, exit: exitFailed, status: "failed", code: 3},
		{module: "submit_flood", args: []string{"--max-steps", "50", "--pull", "never"}, exit: exitFailed, status: "limit", code: 125, msg: "more than 50 steps (--max-steps)", steps: 50},
		{module: "wrong_version", exit: exitUsage, msg: `imports ABI "wflow_v2"`},
		{module: "unknown_import", exit: exitUsage, msg: "unknown function wflow_v1.step_teleport"},
		{module: "bad_signature", exit: exitUsage, msg: "wflow_v1.log_write has signature (i32)->i32"},
		{module: "no_start", exit: exitUsage, msg: "no _start"},
	}
	entries, err := os.ReadDir(filepath.Join(testenv.Root(), "testdata", "hostile"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(cases) {
		t.Errorf("testdata/hostile has %d modules, the table %d: every module needs a row", len(entries), len(cases))
	}
	for _, c := range cases {
		t.Run(c.module, func(t *testing.T) {
			rundir := filepath.Join(t.TempDir(), "run")
			args := append([]string{"run", watFile(t, "testdata/hostile/"+c.module+".wat"), "--rundir", rundir}, c.args...)
			start := time.Now()
			exit, stdout, stderr := wflow(t, args...)
			within := c.within
			if within == 0 {
				within = 30 * time.Second
			}
			if d := time.Since(start); d > within {
				t.Errorf("took %s, want at most %s", d, within)
			}
			if exit != c.exit {
				t.Fatalf("exit %d, want %d\nstdout: %.2000s\nstderr: %s", exit, c.exit, stdout, stderr)
			}
			if c.status == "" {
				if !strings.Contains(stderr, c.msg) {
					t.Errorf("stderr %q does not say %q", stderr, c.msg)
				}
				if _, err := os.Stat(rundir); err == nil {
					t.Errorf("a refused module left a run directory")
				}
				return
			}
			r := readReport(t, rundir)
			if r.Status != c.status || r.ExitCode != c.code || !strings.Contains(r.Message, c.msg) || len(r.Steps) != c.steps {
				t.Errorf("report: status %s exit %d message %q steps %d; want %s %d %q %d",
					r.Status, r.ExitCode, r.Message, len(r.Steps), c.status, c.code, c.msg, c.steps)
			}
			if ids, _ := e.Labelled(context.Background(), "io.wflow.run", r.RunID); len(ids) != 0 {
				t.Errorf("containers of the run remain: %v", ids)
			}
		})
	}
}
