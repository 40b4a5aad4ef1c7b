package trace

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wflow/wflow/step"
)

func TestLine(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 1, 2, 3, 4_000_000, time.UTC)
	ok := step.ExecResult{Step: "a", Handle: 3, Image: "busybox", Submitted: t0, Started: t0.Add(time.Second), Finished: t0.Add(3500 * time.Millisecond)}
	for _, c := range []struct {
		res  step.ExecResult
		want string
	}{
		{ok, "a\t3\tCOMPLETED\t0\t2026-11-28T01:02:03.004Z\t2026-11-28T01:02:04.004Z\t2026-11-28T01:02:06.504Z\t3500ms\t2500ms\t-\t-\tbusybox\tfalse"},
		{withUse(ok, 60948480, 1944), "a\t3\tCOMPLETED\t0\t2026-11-28T01:02:03.004Z\t2026-11-28T01:02:04.004Z\t2026-11-28T01:02:06.504Z\t3500ms\t2500ms\t58.1 MB\t77.8%\tbusybox\tfalse"},
		{withUse(ok, 900, 5000), "a\t3\tCOMPLETED\t0\t2026-11-28T01:02:03.004Z\t2026-11-28T01:02:04.004Z\t2026-11-28T01:02:06.504Z\t3500ms\t2500ms\t900 B\t200.0%\tbusybox\tfalse"},
		{withUse(ok, 3<<30, 0), "a\t3\tCOMPLETED\t0\t2026-11-28T01:02:03.004Z\t2026-11-28T01:02:04.004Z\t2026-11-28T01:02:06.504Z\t3500ms\t2500ms\t3.0 GB\t0.0%\tbusybox\tfalse"},
		{step.ExecResult{Step: "b", ReturnCode: 3, Image: "x"}, "b\t0\tFAILED\t3\t-\t-\t-\t-\t-\t-\t-\tx\tfalse"},
		{step.ExecResult{Step: "c", ReturnCode: 1, ErrorKind: step.ErrorKindCancelled}, "c\t0\tABORTED\t1\t-\t-\t-\t-\t-\t-\t-\t-\tfalse"},
		{step.ExecResult{Step: "d", Cached: true, Image: "x\ty"}, "d\t0\tCACHED\t0\t-\t-\t-\t-\t-\t-\t-\tx y\ttrue"},
		{step.ExecResult{Step: "e", ErrorKind: step.ErrorKindEngine, Error: "boom", ReturnCode: 1}, "e\t0\tFAILED\t1\t-\t-\t-\t-\t-\t-\t-\t-\tfalse"},
	} {
		if got := Line(c.res); got != c.want {
			t.Errorf("Line(%s) =\n%q\nwant\n%q", c.res.Step, got, c.want)
		}
		if n := len(strings.Split(Line(c.res), "\t")); n != len(Columns) {
			t.Errorf("%s: %d fields, %d columns", c.res.Step, n, len(Columns))
		}
	}
}

func withUse(res step.ExecResult, peak, cpuMS int64) step.ExecResult {
	res.Resources = &step.Resources{PeakMemoryBytes: peak, CPUMS: cpuMS}
	return res
}

func TestWriter(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, "run1")
	if err != nil {
		t.Fatal(err)
	}
	w.Append(step.ExecResult{Step: "a", Handle: 1})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, Path("run1")))
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 || lines[0] != strings.Join(Columns, "\t") || !strings.HasPrefix(lines[1], "a\t1\tCOMPLETED") {
		t.Errorf("trace %q", b)
	}
	if _, err := Create(dir, "run1"); err == nil {
		t.Error("a second trace of one run was created")
	}
}
