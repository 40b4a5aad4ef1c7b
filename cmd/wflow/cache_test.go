package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wflow/wflow/containers/docker"
	"github.com/wflow/wflow/internal/testenv"
)

// cachedResult is what the cache tests read of a step's result.
type cachedResult struct {
	Step       string `json:"step"`
	ReturnCode int    `json:"returncode"`
	Stdout     string `json:"stdout"`
	StdoutFile string `json:"stdout_file"`
	ErrorKind  string `json:"error_kind"`
	Key        string `json:"key"`
	Cached     bool   `json:"cached"`
	CachedFrom string `json:"cached_from"`
	CacheMiss  string `json:"cache_miss"`
}

// threeSteps: upper-case two input files (one step each), then join the
// two results. Each step declares what it reads and writes.
const threeSteps = `-p=specs=[
 {"name":"upper-a","image":"wflow-test/busybox","inputs":["in/a.txt"],"outputs":["out/a.up"],
  "commands":["mkdir -p out && tr a-z A-Z < in/a.txt > out/a.up && echo made a"]},
 {"name":"upper-b","image":"wflow-test/busybox","inputs":["in/b.txt"],"outputs":["out/b.up"],
  "commands":["mkdir -p out && tr a-z A-Z < in/b.txt > out/b.up && echo made b"]},
 {"name":"join","image":"wflow-test/busybox","inputs":["out/a.up","out/b.up"],"outputs":["out/all", "out/parts"],
  "commands":["cat out/a.up out/b.up > out/all && mkdir -p out/parts && cp out/a.up out/b.up out/parts/ && echo joined"]}]`

// cacheRun runs threeSteps in a new run directory holding the input files,
// with the step cache in cacheDir, and returns the run directory, the
// results and how many containers the engine created for the run.
func cacheRun(t *testing.T, e *docker.Engine, cacheDir string, inputs map[string]string, flags ...string) (string, []cachedResult, int, string) {
	t.Helper()
	rundir := t.TempDir()
	for name, content := range inputs {
		os.MkdirAll(filepath.Join(rundir, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(rundir, name), []byte(content), 0o644)
	}
	start := time.Now()
	args := append([]string{"run", testenv.GoGuest(t, "./testdata/guests/rawspecs"), "--rundir", rundir, "--cache-dir", cacheDir,
		"-p", "fn=step", threeSteps}, flags...)
	code, stdout, stderr := wflow(t, args...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	rep := readReport(t, rundir)
	var res []cachedResult
	if err := json.Unmarshal(rep.Output, &res); err != nil || len(res) != 3 {
		t.Fatalf("output %s: %v", rep.Output, err)
	}
	n, err := e.Created(context.Background(), start, time.Now(), "io.wflow.run="+rep.RunID)
	if err != nil {
		t.Fatal(err)
	}
	return rundir, res, n, stdout
}

func fileText(t *testing.T, dir, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStepCacheAnswersUnchangedStepsAndExplainsMisses: a second run of an
// unchanged workflow, in another run directory, starts no container and
// has every output; changing one input file re-runs exactly the steps that
// depend on it, and --explain names the file.
func TestStepCacheAnswersUnchangedStepsAndExplainsMisses(t *testing.T) {
	e := testenv.Docker(t)
	cacheDir := t.TempDir()
	inputs := map[string]string{"in/a.txt": "alpha\n", "in/b.txt": "beta\n"}

	_, first, created, stdout := cacheRun(t, e, cacheDir, inputs, "--explain")
	if created != 3 {
		t.Errorf("first run: the engine created %d containers, want 3", created)
	}
	for _, r := range first {
		if r.Cached || r.ReturnCode != 0 || !strings.HasPrefix(r.Key, "sha256:") || !strings.Contains(r.CacheMiss, "never stored") {
			t.Errorf("first run: %+v", r)
		}
	}
	if !strings.Contains(stdout, "[join] cache miss: no entry: step join was never stored") {
		t.Errorf("--explain did not say why join missed:\n%s", stdout)
	}

	rundir, second, created, stdout := cacheRun(t, e, cacheDir, inputs, "--explain")
	if created != 0 {
		t.Errorf("second run: the engine created %d containers, want 0", created)
	}
	for i, r := range second {
		if !r.Cached || r.CachedFrom == "" || r.Key != first[i].Key || r.Stdout != first[i].Stdout || r.CacheMiss != "" {
			t.Errorf("second run: %+v, first %+v", r, first[i])
		}
		if got := fileText(t, rundir, r.StdoutFile); got != r.Stdout {
			t.Errorf("%s: the restored stdout file holds %q, want %q", r.Step, got, r.Stdout)
		}
	}
	if got := fileText(t, rundir, "out/all"); got != "ALPHA\nBETA\n" {
		t.Errorf("restored out/all = %q", got)
	}
	if got := fileText(t, rundir, "out/parts/b.up"); got != "BETA\n" {
		t.Errorf("restored out/parts/b.up = %q", got)
	}
	if strings.Contains(stdout, "cache miss") || !strings.Contains(stdout, "[join] cached: exited 0 in run") {
		t.Errorf("second run's console:\n%s", stdout)
	}

	inputs["in/b.txt"] = "bravo\n"
	rundir, third, created, stdout := cacheRun(t, e, cacheDir, inputs, "--explain")
	if created != 2 {
		t.Errorf("third run: the engine created %d containers, want 2 (upper-b and join)", created)
	}
	if !third[0].Cached || third[1].Cached || third[2].Cached {
		t.Errorf("third run: cached %t %t %t, want true false false", third[0].Cached, third[1].Cached, third[2].Cached)
	}
	if !strings.Contains(third[1].CacheMiss, "input in/b.txt (content)") {
		t.Errorf("upper-b's miss does not name in/b.txt: %q", third[1].CacheMiss)
	}
	if !strings.Contains(third[2].CacheMiss, "input out/b.up (content)") || strings.Contains(third[2].CacheMiss, "out/a.up") {
		t.Errorf("join's miss should name out/b.up alone: %q", third[2].CacheMiss)
	}
	if !strings.Contains(stdout, "[upper-b] cache miss: no entry; since run") {
		t.Errorf("--explain:\n%s", stdout)
	}
	if got := fileText(t, rundir, "out/all"); got != "ALPHA\nBRAVO\n" {
		t.Errorf("out/all = %q", got)
	}

	// --no-cache runs everything; --cache-strict fails what it cannot answer.
	_, _, created, _ = cacheRun(t, e, cacheDir, inputs, "--no-cache")
	if created != 3 {
		t.Errorf("--no-cache: the engine created %d containers, want 3", created)
	}
	inputs["in/a.txt"] = "apple\n"
	_, strict, created, _ := cacheRun(t, e, cacheDir, inputs, "--cache-strict")
	if created != 0 || strict[0].ErrorKind != "cache_miss" || strict[1].ErrorKind != "" || !strict[1].Cached {
		t.Errorf("--cache-strict: %d containers, results %+v", created, strict)
	}

	// The store as wflow cache shows it: one entry per step that stored
	// (upper-a twice: alpha, apple is not stored; upper-b twice; join twice).
	code, stdout, stderr := wflow(t, "cache", "ls", "--json", "--cache-dir", cacheDir)
	var list []struct{ Key, Step string }
	if code != exitOK || json.Unmarshal([]byte(stdout), &list) != nil || len(list) != 5 {
		t.Fatalf("cache ls: exit %d, %d entries\n%s%s", code, len(list), stdout, stderr)
	}
	if code, stdout, _ := wflow(t, "cache", "show", "--cache-dir", cacheDir, list[0].Key); code != exitOK || !strings.Contains(stdout, `"outputs"`) {
		t.Errorf("cache show: exit %d\n%s", code, stdout)
	}
	if code, stdout, _ := wflow(t, "cache", "prune", "--max-size", "0", "--cache-dir", cacheDir); code != exitOK || !strings.HasPrefix(stdout, "removed 5 entries") {
		t.Errorf("cache prune: exit %d\n%s", code, stdout)
	}
	if code, _, stderr := wflow(t, "cache", "show", "--cache-dir", cacheDir, "sha256:nope"); code != exitUsage || !strings.Contains(stderr, "not a sha256 digest") {
		t.Errorf("cache show of a bad key: exit %d, %s", code, stderr)
	}
}
