// Command bench measures wflow next to what a user would otherwise do, in
// the same run, on the local engine and local images only, and writes the
// table of docs/benchmarks.md. `make bench` runs it:
//
//	go run ./bench [-reps 5] [-cases seq,par,exec,start,hostcall,bigout,cache,replay,report,engines] [-out docs/benchmarks.md]
//	go run ./bench -cases kubernetes   (the simulated cluster alone; engines has it too)
//
// Every case prints wflow's figure and its baseline's (median, min, max over
// the repetitions) and their ratio (of the medians). The raw-client
// baseline of the sequential case imports the Docker SDK here: it is what
// wflow is measured against, so it may not go through wflow's engine.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/client"
	"github.com/wflow/wflow/containers/docker"
)

const image = "wflow-test/busybox:latest"

func main() {
	reps := flag.Int("reps", 5, "repetitions of each case")
	cases := flag.String("cases", "seq,par,exec,start,hostcall,bigout,cache,replay,report,engines", "cases to run")
	out := flag.String("out", "", "markdown file whose generated table is replaced (between the bench markers)")
	bigSize := flag.Int64("bigout-size", 1<<30, "bytes the big-output step prints")
	flag.Parse()
	if err := run(*reps, strings.Split(*cases, ","), *out, *bigSize); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// stats is a series of measurements of one thing.
type stats []float64

func (s stats) sorted() stats { c := append(stats(nil), s...); sort.Float64s(c); return c }
func (s stats) median() float64 {
	c := s.sorted()
	if len(c) == 0 {
		return 0
	}
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}
func (s stats) min() float64 { return s.sorted()[0] }
func (s stats) max() float64 { return s.sorted()[len(s)-1] }

// row is one line of the table.
type row struct {
	Case, Unit      string
	Wflow, Baseline stats
	BaselineName    string
	Target          string
	Met             bool
	Note            string
}

func (r row) ratio() float64 { return r.Wflow.median() / r.Baseline.median() }

func fmtStats(s stats, unit string) string {
	if len(s) == 0 {
		return "-"
	}
	f := func(v float64) string {
		switch unit {
		case "s":
			return fmt.Sprintf("%.2f", v)
		case "ms":
			return fmt.Sprintf("%.1f", v)
		case "ns":
			return fmt.Sprintf("%.0f", v)
		}
		return fmt.Sprintf("%.1f", v)
	}
	if len(s) == 1 {
		return f(s[0]) + " " + unit
	}
	return fmt.Sprintf("%s %s (%s–%s)", f(s.median()), unit, f(s.min()), f(s.max()))
}

type env struct {
	dir   string // temporary build folder, removed at the end
	wflow string
	mods  map[string]string
	cache string // warm compilation cache
	cli   *client.Client
}

func run(reps int, cases []string, out string, bigSize int64) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "wflow-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	e := &env{dir: dir, mods: map[string]string{}, cache: filepath.Join(dir, "cache")}
	if e.cli, err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation()); err != nil {
		return err
	}
	defer e.cli.Close()
	fmt.Println("building wflow and the benchmark guests...")
	e.wflow = filepath.Join(dir, "wflow")
	if err := sh(root, nil, "go", "build", "-o", e.wflow, "./cmd/wflow"); err != nil {
		return err
	}
	for _, g := range []string{"seq", "par", "exec", "noop", "hostcall-go", "bigout", "cached"} {
		e.mods[g] = filepath.Join(dir, g+".wasm")
		if err := sh(root, []string{"GOOS=wasip1", "GOARCH=wasm"}, "go", "build", "-o", e.mods[g], "./bench/guests/"+g); err != nil {
			return err
		}
	}
	e.mods["noop-c"] = filepath.Join(dir, "noop-c.wasm")
	if err := sh(root, nil, "clang", "--target=wasm32-wasi", "-O2", "-o", e.mods["noop-c"], "bench/guests/noop-c/main.c"); err != nil {
		return err
	}
	e.mods["hostcall-c"] = filepath.Join(dir, "hostcall-c.wasm")
	if err := sh(root, nil, "clang", "--target=wasm32-wasi", "-O2", "-I", "sdk/c", "-o", e.mods["hostcall-c"], "bench/guests/hostcall-c/main.c"); err != nil {
		return err
	}

	var rows []row
	for _, c := range cases {
		fmt.Printf("case %s...\n", c)
		var rs []row
		switch c {
		case "seq":
			rs, err = e.sequential(reps)
		case "par":
			rs, err = e.parallel(reps)
		case "exec":
			rs, err = e.jobContainer(reps)
		case "start":
			rs, err = e.start(reps)
		case "hostcall":
			rs, err = e.hostcall(reps)
		case "bigout":
			rs, err = e.bigout(bigSize)
		case "cache":
			rs, err = e.stepCache(reps)
		case "replay":
			rs, err = e.replay(reps)
		case "engines":
			rs, err = e.engines(reps)
		case "report":
			rs, err = e.reportPages(reps)
		case "kubernetes": // also in engines; alone, without the row against docker
			rs, err = e.kubernetesRows(reps, nil)
		default:
			err = fmt.Errorf("unknown case %q", c)
		}
		if err != nil {
			return fmt.Errorf("case %s: %w", c, err)
		}
		for _, r := range rs {
			fmt.Printf("  %-48s wflow %-28s %-34s %-28s ratio %.2f  target %s: %s\n", r.Case, fmtStats(r.Wflow, r.Unit), r.BaselineName, fmtStats(r.Baseline, r.Unit), r.ratio(), r.Target, metWord(r.Met))
		}
		rows = append(rows, rs...)
	}
	table := markdown(rows, reps)
	fmt.Println()
	fmt.Print(table)
	if out != "" {
		return replaceGenerated(filepath.Join(root, out), table)
	}
	return nil
}

func metWord(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func markdown(rows []row, reps int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Generated by `go run ./bench -reps %d` on %s, %d cores (%s/%s), %s.\n\n", reps, time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	b.WriteString("| case | wflow: median (min–max) | baseline | baseline: median (min–max) | ratio | target | |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.2f | %s | %s |\n", r.Case, fmtStats(r.Wflow, r.Unit), r.BaselineName, fmtStats(r.Baseline, r.Unit), r.ratio(), r.Target, metWord(r.Met))
	}
	for _, r := range rows {
		if r.Note != "" {
			fmt.Fprintf(&b, "\n%s: %s\n", r.Case, r.Note)
		}
	}
	return b.String()
}

const beginMarker, endMarker = "<!-- bench:begin -->", "<!-- bench:end -->"

func replaceGenerated(path, table string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s ... %s block", path, beginMarker, endMarker)
	}
	s = s[:i+len(beginMarker)] + "\n" + table + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}

// timeCmd runs a command and returns its wall time in seconds and its max RSS in KiB.
func timeCmd(dir string, stdout io.Writer, name string, args ...string) (float64, int64, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout = stdout
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start).Seconds()
	if err != nil {
		return d, 0, fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss
		lastCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return d, rss, nil
}

// lastCPU is the CPU time (user + system) of the last command timeCmd ran.
var lastCPU float64

// machineBusy returns the CPU seconds all cores spent busy so far (/proc/stat).
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	fields := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
	var busy float64
	for i, f := range fields[1:] {
		var v float64
		fmt.Sscan(f, &v)
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy / 100 // USER_HZ
}

func (e *env) wflowRun(module string, args ...string) (float64, int64, string, error) {
	rundir, err := os.MkdirTemp(e.dir, "run-")
	if err != nil {
		return 0, 0, "", err
	}
	all := append([]string{"run", module, "--rundir", rundir, "--cache-dir", e.cache}, args...)
	d, rss, err := timeCmd(e.dir, io.Discard, e.wflow, all...)
	return d, rss, rundir, err
}

func output(rundir string, v any) error {
	b, err := os.ReadFile(filepath.Join(rundir, ".wflow", "report.json"))
	if err != nil {
		return err
	}
	var r struct {
		Output json.RawMessage `json:"output"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	return json.Unmarshal(r.Output, v)
}

// sequential: 20 one-command steps, one after another.
func (e *env) sequential(reps int) ([]row, error) {
	const n = 20
	if _, _, _, err := e.wflowRun(e.mods["seq"]); err != nil { // warm the cache
		return nil, err
	}
	var w, cli, raw stats
	loop := fmt.Sprintf("for i in $(seq %d); do docker run --rm --network none %s true >/dev/null; done", n, image)
	var wcpu, busy stats
	for i := 0; i < reps; i++ {
		b0 := machineBusy()
		d, _, _, err := e.wflowRun(e.mods["seq"])
		if err != nil {
			return nil, err
		}
		w = append(w, d)
		wcpu, busy = append(wcpu, lastCPU), append(busy, machineBusy()-b0)
		d, _, err = timeCmd(e.dir, io.Discard, "sh", "-c", loop)
		if err != nil {
			return nil, err
		}
		cli = append(cli, d)
		start := time.Now()
		if err := e.rawLoop(n); err != nil {
			return nil, err
		}
		raw = append(raw, time.Since(start).Seconds())
	}
	r1 := row{Case: "20 sequential steps vs a `docker run --rm` loop", Unit: "s", Wflow: w, Baseline: cli, BaselineName: "shell loop of `docker run --rm`", Target: "≤ 0.85"}
	r1.Met = r1.ratio() <= 0.85
	r2 := row{Case: "20 sequential steps vs raw client calls", Unit: "s", Wflow: w, Baseline: raw, BaselineName: "Go loop: create, start, wait, logs, remove", Target: "≤ 1.10"}
	r2.Met = r2.ratio() <= 1.10
	r1.Note = fmt.Sprintf("during a wflow run (median %.2f s wall), the wflow process used %.2f s of CPU and the machine %.2f s (all cores): the rest is the engine (dockerd, containerd, shims, runc)", w.median(), wcpu.median(), busy.median())
	return []row{r1, r2}, nil
}

// rawLoop is the raw-client baseline: what a Go program calling the Docker
// API for each step does at the least (rawLoopOn, on the local engine).
func (e *env) rawLoop(n int) error { return rawLoopOn(e.cli, n) }

// parallel: 32 independent steps, 8 at a time.
func (e *env) parallel(reps int) ([]row, error) {
	if _, _, _, err := e.wflowRun(e.mods["par"], "--parallel", "8"); err != nil {
		return nil, err
	}
	var w, x stats
	xargs := fmt.Sprintf("seq 32 | xargs -P8 -I{} docker run --rm --network none %s true", image)
	var wcpu, busy stats
	for i := 0; i < reps; i++ {
		b0 := machineBusy()
		d, _, _, err := e.wflowRun(e.mods["par"], "--parallel", "8")
		if err != nil {
			return nil, err
		}
		w = append(w, d)
		wcpu, busy = append(wcpu, lastCPU), append(busy, machineBusy()-b0)
		d, _, err = timeCmd(e.dir, io.Discard, "sh", "-c", xargs)
		if err != nil {
			return nil, err
		}
		x = append(x, d)
	}
	r := row{Case: "32 independent steps, parallelism 8", Unit: "s", Wflow: w, Baseline: x, BaselineName: "`xargs -P8 docker run --rm`", Target: "≤ 0.80"}
	r.Met = r.ratio() <= 0.80
	r.Note = fmt.Sprintf("during a wflow run (median %.2f s wall, %d cores), the machine was busy %.2f CPU-s, the wflow process %.2f CPU-s", w.median(), runtime.NumCPU(), busy.median(), wcpu.median())
	return []row{r}, nil
}

// start: `wflow run` of a module that runs no step, cold and warm.
func (e *env) start(reps int) ([]row, error) {
	var cold, warm, dv stats
	for i := 0; i < reps; i++ {
		fresh, err := os.MkdirTemp(e.dir, "cache-")
		if err != nil {
			return nil, err
		}
		rundir, _ := os.MkdirTemp(e.dir, "run-")
		d, _, err := timeCmd(e.dir, io.Discard, e.wflow, "run", e.mods["noop"], "--rundir", rundir, "--cache-dir", fresh)
		if err != nil {
			return nil, err
		}
		cold = append(cold, d*1000)
		d, _, _, err = e.wflowRun(e.mods["noop"])
		if err != nil {
			return nil, err
		}
		if i > 0 || reps == 1 { // the first warm run fills the shared cache
			warm = append(warm, d*1000)
		}
		d, _, err = timeCmd(e.dir, io.Discard, "docker", "version")
		if err != nil {
			return nil, err
		}
		dv = append(dv, d*1000)
	}
	var warmC stats
	for i := 0; i <= reps; i++ {
		d, _, _, err := e.wflowRun(e.mods["noop-c"])
		if err != nil {
			return nil, err
		}
		if i > 0 {
			warmC = append(warmC, d*1000)
		}
	}
	rc := row{Case: "`wflow run` of a no-step Go module, cold cache", Unit: "ms", Wflow: cold, Baseline: dv, BaselineName: "`docker version`", Target: "-", Met: true}
	rw := row{Case: "`wflow run` of a no-step Go module, warm cache", Unit: "ms", Wflow: warm, Baseline: dv, BaselineName: "`docker version`", Target: "≤ 50 ms"}
	rw.Met = warm.median() <= 50
	rwc := row{Case: "`wflow run` of a no-step C module, warm cache", Unit: "ms", Wflow: warmC, Baseline: dv, BaselineName: "`docker version`", Target: "≤ 50 ms"}
	rwc.Met = warmC.median() <= 50
	return []row{rc, rw, rwc}, nil
}

// hostcall: one host-call round trip from a Go and a C guest.
func (e *env) hostcall(reps int) ([]row, error) {
	var rows []row
	for _, g := range []string{"hostcall-go", "hostcall-c"} {
		var w, b stats
		for i := 0; i < reps; i++ {
			_, _, rundir, err := e.wflowRun(e.mods[g])
			if err != nil {
				return nil, err
			}
			var out struct {
				Wflow    float64 `json:"wflow_ns"`
				Baseline float64 `json:"baseline_ns"`
			}
			if err := output(rundir, &out); err != nil {
				return nil, err
			}
			w, b = append(w, out.Wflow), append(b, out.Baseline)
		}
		lang := map[string]string{"hostcall-go": "Go", "hostcall-c": "C"}[g]
		r := row{Case: "host-call round trip from a " + lang + " guest (params_get)", Unit: "ns", Wflow: w, Baseline: b, BaselineName: "WASI `sched_yield` (a no-op host call)", Target: "≤ 1 µs"}
		r.Met = w.median() <= 1000
		rows = append(rows, r)
	}
	return rows, nil
}

// bigout: a step printing size bytes; wflow's peak RSS and the output's checksum.
func (e *env) bigout(size int64) ([]row, error) {
	// Warm the compilation cache first: compiling a Go guest takes tens of
	// MiB for a moment, which is not what this case measures.
	if _, _, _, err := e.wflowRun(e.mods["bigout"], "-p", "size=1"); err != nil {
		return nil, err
	}
	d, rss, rundir, err := e.wflowRun(e.mods["bigout"], "-p", fmt.Sprintf("size=%d", size))
	if err != nil {
		return nil, err
	}
	var out struct {
		StdoutFile string `json:"stdout_file"`
	}
	if err := output(rundir, &out); err != nil {
		return nil, err
	}
	got, err := fileSum(filepath.Join(rundir, out.StdoutFile))
	if err != nil {
		return nil, err
	}
	want := patternSum(size)
	os.RemoveAll(rundir)

	cliOut := filepath.Join(e.dir, "cli-bigout")
	f, err := os.Create(cliOut)
	if err != nil {
		return nil, err
	}
	cd, crss, err := timeCmd(e.dir, f, "docker", "run", "--rm", "--network", "none", image, "sh", "-c",
		fmt.Sprintf("yes %s | head -c %d", line, size))
	f.Close()
	os.Remove(cliOut)
	if err != nil {
		return nil, err
	}
	intact := got == want
	r := row{Case: fmt.Sprintf("a step printing %d MiB: peak RSS", size>>20), Unit: "MiB",
		Wflow: stats{float64(rss) / 1024}, Baseline: stats{float64(crss) / 1024}, BaselineName: "`docker run > file` (the CLI's RSS)",
		Target: "≤ 64 MiB, output intact"}
	r.Met = float64(rss)/1024 <= 64 && intact
	r.Note = fmt.Sprintf("output checksum %s (want %s): %s; wall time wflow %.1f s, `docker run > file` %.1f s",
		got[:16], want[:16], map[bool]string{true: "intact", false: "DIFFERS"}[intact], d, cd)
	return []row{r}, nil
}

// line is the pattern of bench/guests/bigout.
const line = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

func patternSum(size int64) string {
	h := sha256.New()
	chunk := bytes.Repeat([]byte(line+"\n"), 1<<14)
	for left := size; left > 0; {
		n := min(left, int64(len(chunk)))
		h.Write(chunk[:n])
		left -= n
	}
	return hex.EncodeToString(h.Sum(nil))
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func sh(dir string, env []string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
	return nil
}

func repoRoot() (string, error) {
	b, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m: %w (run from the repository)", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// cache: the step cache. A second run of an unchanged 20-step workflow whose
// steps declare outputs, against its first run; the cost of one hit; the
// cost of keying a 1 GiB input, against sha256sum of the same file.
func (e *env) stepCache(reps int) ([]row, error) {
	const n = 20
	var first, second, noop, perHit stats
	created := 0
	if _, _, _, err := e.wflowRun(e.mods["cached"], "-p", "n=0"); err != nil { // compile it into the warm cache
		return nil, err
	}
	for i := 0; i < reps; i++ {
		steps, err := os.MkdirTemp(e.dir, "steps-")
		if err != nil {
			return nil, err
		}
		// A cache folder of its own for the steps, with the warm compiled modules in it.
		if err := os.Symlink(filepath.Join(e.cache, "wazero"), filepath.Join(steps, "wazero")); err != nil {
			return nil, err
		}
		run := func(extra ...string) (float64, string, error) {
			rundir, err := os.MkdirTemp(e.dir, "run-")
			if err != nil {
				return 0, "", err
			}
			args := append([]string{"run", e.mods["cached"], "--rundir", rundir, "--cache-dir", steps, "-p", fmt.Sprintf("n=%d", n)}, extra...)
			d, _, err := timeCmd(e.dir, io.Discard, e.wflow, args...)
			return d, rundir, err
		}
		d1, _, err := run()
		if err != nil {
			return nil, err
		}
		start := time.Now()
		d2, rundir, err := run()
		if err != nil {
			return nil, err
		}
		c, err := e.created(start, rundir)
		if err != nil {
			return nil, err
		}
		created += c
		d0, _, _, err := e.wflowRun(e.mods["noop"])
		if err != nil {
			return nil, err
		}
		first, second, noop = append(first, d1*1000), append(second, d2*1000), append(noop, d0*1000)
		perHit = append(perHit, (d2-d0)*1000/n)
	}
	rerun := row{Case: fmt.Sprintf("second run of an unchanged %d-step workflow, every step cached", n), Unit: "ms", Wflow: second, Baseline: first,
		BaselineName: "its first run (every step a container)", Target: "≤ 100 ms",
		Note: fmt.Sprintf("containers the engine created during the second runs (its events): %d", created)}
	rerun.Met = second.median() <= 100 && created == 0
	hit := row{Case: "one cache hit (second run minus a no-step run, over 20)", Unit: "ms", Wflow: perHit, Baseline: noop,
		BaselineName: "a no-step Go module's whole run", Target: "≤ 5 ms"}
	hit.Met = perHit.median() <= 5

	// Keying a 1 GiB input: a cached run with the input declared, minus
	// one without, against sha256sum reading the same file.
	big := filepath.Join(e.dir, "big-input")
	if err := sh(e.dir, nil, "dd", "if=/dev/urandom", "of="+big, "bs=1M", "count=1024", "status=none"); err != nil {
		return nil, err
	}
	defer os.Remove(big)
	steps, err := os.MkdirTemp(e.dir, "steps-")
	if err != nil {
		return nil, err
	}
	os.Symlink(filepath.Join(e.cache, "wazero"), filepath.Join(steps, "wazero"))
	var keyed, sum stats
	for i := 0; i <= reps; i++ {
		rundir, err := os.MkdirTemp(e.dir, "run-")
		if err != nil {
			return nil, err
		}
		if err := os.Link(big, filepath.Join(rundir, "big")); err != nil {
			return nil, err
		}
		with, _, err := timeCmd(e.dir, io.Discard, e.wflow, "run", e.mods["cached"], "--rundir", rundir, "--cache-dir", steps, "-p", "n=1", "-p", "input=big")
		if err != nil {
			return nil, err
		}
		rundir2, _ := os.MkdirTemp(e.dir, "run-")
		without, _, err := timeCmd(e.dir, io.Discard, e.wflow, "run", e.mods["cached"], "--rundir", rundir2, "--cache-dir", steps, "-p", "n=1")
		if err != nil {
			return nil, err
		}
		d, _, err := timeCmd(e.dir, io.Discard, "sha256sum", big)
		if err != nil {
			return nil, err
		}
		if i > 0 { // the first fills the cache
			keyed, sum = append(keyed, with-without), append(sum, d)
		}
	}
	hash := row{Case: "keying a 1 GiB input (a cached run with it declared, minus one without)", Unit: "s", Wflow: keyed, Baseline: sum,
		BaselineName: "`sha256sum` of the file", Target: "≤ 1.10", Met: true}
	hash.Met = hash.ratio() <= 1.10
	return []row{rerun, hit, hash}, nil
}

// replay: `wflow replay` of a 500-step run, against the start-up of a
// module with no steps (what a replay costs besides its steps).
func (e *env) replay(reps int) ([]row, error) {
	const n = 500
	fmt.Printf("  recording a run of %d steps...\n", n)
	_, _, rundir, err := e.wflowRun(e.mods["par"], "-p", fmt.Sprintf("n=%d", n), "--parallel", "8")
	if err != nil {
		return nil, err
	}
	matches, _ := filepath.Glob(filepath.Join(rundir, ".wflow", "runs", "*", "calls.jsonl"))
	if len(matches) == 1 {
		if info, err := os.Stat(matches[0]); err == nil {
			fmt.Printf("  calls journal: %d bytes, %.0f bytes a step\n", info.Size(), float64(info.Size())/n)
		}
	}
	var replay, noop, perStep stats
	for i := 0; i <= reps; i++ {
		d, _, err := timeCmd(e.dir, io.Discard, e.wflow, "replay", rundir, e.mods["par"], "--cache-dir", e.cache)
		if err != nil {
			return nil, err
		}
		s, _, _, err := e.wflowRun(e.mods["noop"])
		if err != nil {
			return nil, err
		}
		if i == 0 {
			continue // fills the compilation cache
		}
		replay, noop = append(replay, d*1000), append(noop, s*1000)
		perStep = append(perStep, (d-s)*1000/n)
	}
	whole := row{Case: fmt.Sprintf("`wflow replay` of a %d-step run", n), Unit: "ms", Wflow: replay, Baseline: noop,
		BaselineName: "`wflow run` of a no-step module", Target: "-", Met: true}
	step := row{Case: "replay: cost of a recorded step (replay minus start-up, / 500)", Unit: "ms", Wflow: perStep, Baseline: noop,
		BaselineName: "`wflow run` of a no-step module", Target: "≤ 1 ms"}
	step.Met = perStep.median() <= 1
	return []row{whole, step}, nil
}

// created counts the containers the engine created since start for the run
// of rundir, from the engine's events.
func (e *env) created(start time.Time, rundir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(rundir, ".wflow", "report.json"))
	if err != nil {
		return 0, err
	}
	var r struct {
		RunID string `json:"run_id"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, err
	}
	engine, err := docker.New(context.Background())
	if err != nil {
		return 0, err
	}
	defer engine.Close()
	return engine.Created(context.Background(), start, time.Now(), "io.wflow.run="+r.RunID)
}
