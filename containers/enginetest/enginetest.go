// Package enginetest is the conformance suite of containers.Engine, in the
// style of testing/fstest: an engine's tests call Run with a Harness, and
// Run checks, each in a subtest, everything containers.Runner relies on:
// images, exit codes, stdout and stderr kept apart and streamed while the
// container runs, no output lost by a container that exits at once, the
// run directory mounted as the working directory, the environment, labels
// while running and removal after, cancellation. An engine that isolates
// its containers (Harness.Isolated) is also checked for what isolation the
// runner asks: no capabilities nor new privileges, limits, user, read-only
// root and records, no network, OOM.
//
// Every engine wflow has runs it: the Docker engine (containers/docker)
// and the fake engine (containers/fakeengine); a new engine (Swarm,
// Podman, Kubernetes) must pass it before the runner may use it.
package enginetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/step"
)

// Harness is what Run needs to drive an engine.
type Harness struct {
	// Engine is the engine under test.
	Engine containers.Engine
	// Image is present in the engine and runs a POSIX sh with echo, cat,
	// sleep, id, ls, pwd, head, tr and touch (busybox does).
	Image string
	// Missing is an image reference the engine does not have and cannot pull.
	Missing string
	// Labelled lists the engine's containers (or whatever runs a
	// ContainerSpec: services, jobs) whose label key has value; Run checks
	// with it that a container carries its labels while it runs and is gone
	// when Engine.Run returns.
	Labelled func(ctx context.Context, key, value string) ([]string, error)
	// Isolated says the engine confines its containers as ContainerSpec asks
	// (limits, user, network, read-only root and records, the mount point as
	// working directory). A fake engine that runs host processes is not, and
	// skips those checks.
	Isolated bool
	// What an isolated engine cannot do, each with the reason the check
	// logs when it skips it ("" means the engine must). Every one is a
	// documented gap (docs/security.md), never a way around a failure.
	Gaps Gaps
}

// Gaps are the checks an isolated engine is known to fail, with why.
type Gaps struct {
	// NoNewPrivileges: the engine cannot set no-new-privileges.
	NoNewPrivileges string
	// OnlyLoopback: the engine's "none" network still gives the container
	// an interface (it must still reach nothing: no route out, not the host).
	OnlyLoopback string
	// OOMReported: the engine does not say when the OOM killer ended a
	// container (it must still kill it at the limit).
	OOMReported string
	// SwapLimited: the engine cannot keep a container with a memory limit
	// from swapping.
	SwapLimited string
	// NoResources: the engine does not measure what a container uses
	// (Exit.Usage), here.
	NoResources string
}

// timeout bounds every check: a check that hangs fails instead.
const timeout = 2 * time.Minute

// Run runs the conformance suite against h.
func Run(t *testing.T, h Harness) {
	t.Run("EnsureImage", func(t *testing.T) { ensureImage(t, h) })
	t.Run("ExitCodes", func(t *testing.T) { exitCodes(t, h) })
	t.Run("StdoutAndStderrApart", func(t *testing.T) { streamsApart(t, h) })
	t.Run("OutputStreamsWhileRunning", func(t *testing.T) { outputStreams(t, h) })
	t.Run("ShortLivedOutputIsKept", func(t *testing.T) { shortLived(t, h) })
	t.Run("RunDirectory", func(t *testing.T) { runDirectory(t, h) })
	t.Run("Environment", func(t *testing.T) { environment(t, h) })
	t.Run("LabelsWhileRunningRemovedAfter", func(t *testing.T) { labelsAndRemoval(t, h) })
	t.Run("CancelStopsAndRemoves", func(t *testing.T) { cancel(t, h) })
	if !h.Isolated {
		return
	}
	if h.Labelled == nil {
		t.Fatal("an isolated engine's harness must list containers (Labelled): wflow gc and the removal checks need it")
	}
	t.Run("Hardened", func(t *testing.T) { hardened(t, h) })
	t.Run("WorkDirIsTheMountPoint", func(t *testing.T) { workDir(t, h) })
	t.Run("RecordsAreReadOnly", func(t *testing.T) { records(t, h) })
	t.Run("Limits", func(t *testing.T) { limits(t, h) })
	t.Run("NoNetwork", func(t *testing.T) { noNetwork(t, h) })
	t.Run("OOMKilledIsReported", func(t *testing.T) { oom(t, h) })
	t.Run("ResourcesAreMeasured", func(t *testing.T) { resources(t, h) })
}

// spec is a ContainerSpec running script with sh in a new run directory,
// labelled with a run id of its own.
func spec(t *testing.T, h Harness, script string) containers.ContainerSpec {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, ".wflow"), 0o755); err != nil {
		t.Fatal(err)
	}
	return containers.ContainerSpec{
		Image:   h.Image,
		Args:    []string{"sh", "-c", script},
		Env:     []string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"},
		RunDir:  dir,
		WorkDir: "/wflow",
		Records: ".wflow",
		Labels: map[string]string{
			containers.LabelRun:  fmt.Sprintf("enginetest-%d-%s", time.Now().UnixNano(), strings.ReplaceAll(t.Name(), "/", "-")),
			containers.LabelStep: "check",
		},
		Limits: step.Limits{Network: "none"},
	}
}

// run runs s and returns its exit, stdout and stderr.
func run(t *testing.T, h Harness, s containers.ContainerSpec) (containers.Exit, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stdout, stderr syncBuffer
	exit, err := h.Engine.Run(ctx, s, &stdout, &stderr)
	if err != nil {
		t.Fatalf("Run %q: %v", s.Args, err)
	}
	return exit, stdout.String(), stderr.String()
}

// assertGone checks that nothing labelled with s's run id remains.
func assertGone(t *testing.T, h Harness, s containers.ContainerSpec) {
	t.Helper()
	if h.Labelled == nil {
		return
	}
	ids, err := h.Labelled(context.Background(), containers.LabelRun, s.Labels[containers.LabelRun])
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 0 {
		t.Errorf("%d container(s) remain after Run returned: %v", len(ids), ids)
	}
}

func ensureImage(t *testing.T, h Harness) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	id, err := h.Engine.EnsureImage(ctx, h.Image, containers.PullNever)
	if err != nil || id == "" {
		t.Errorf("EnsureImage(%s) = %q, %v: want its id", h.Image, id, err)
	}
	if _, err := h.Engine.EnsureImage(ctx, h.Missing, containers.PullNever); !errors.Is(err, containers.ErrImageUnavailable) {
		t.Errorf("EnsureImage(%s, never) = %v, want an error wrapping ErrImageUnavailable", h.Missing, err)
	}
}

func exitCodes(t *testing.T, h Harness) {
	for _, code := range []int{0, 1, 3, 255} {
		s := spec(t, h, fmt.Sprintf("exit %d", code))
		if exit, _, _ := run(t, h, s); exit.Code != code || exit.OOMKilled {
			t.Errorf("exit %d: got %+v", code, exit)
		}
		assertGone(t, h, s)
	}
}

func streamsApart(t *testing.T, h Harness) {
	_, stdout, stderr := run(t, h, spec(t, h, "echo out1; echo err1 >&2; echo out2; echo err2 >&2"))
	if stdout != "out1\nout2\n" || stderr != "err1\nerr2\n" {
		t.Errorf("stdout %q, stderr %q", stdout, stderr)
	}
}

// outputStreams: the container waits for a file the test writes only once
// it has seen the container's first line, so the check passes only when
// output reaches the writer while the container runs.
func outputStreams(t *testing.T, h Harness) {
	s := spec(t, h, "echo first; i=0; while [ ! -f go ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; echo second")
	w := &watchWriter{want: "first\n", seen: make(chan struct{})}
	go func() {
		select {
		case <-w.seen:
			os.WriteFile(filepath.Join(s.RunDir, "go"), nil, 0o666)
		case <-time.After(timeout):
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	exit, err := h.Engine.Run(ctx, s, w, &bytes.Buffer{})
	if err != nil || exit.Code != 0 || w.String() != "first\nsecond\n" {
		t.Errorf("exit %+v, %v, stdout %q", exit, err, w.String())
	}
	if time.Since(start) > 8*time.Second {
		t.Errorf("the container waited %s: its first line reached the writer only at its end", time.Since(start))
	}
}

// shortLived: a container that prints and exits at once loses no output
// (the engine attaches before it starts).
func shortLived(t *testing.T, h Harness) {
	for i := 0; i < 10; i++ {
		_, stdout, stderr := run(t, h, spec(t, h, fmt.Sprintf("echo fast %d; echo err %d >&2", i, i)))
		if stdout != fmt.Sprintf("fast %d\n", i) || stderr != fmt.Sprintf("err %d\n", i) {
			t.Fatalf("run %d: stdout %q, stderr %q", i, stdout, stderr)
		}
	}
}

// runDirectory: the run directory is the working directory, read and
// written by the container.
func runDirectory(t *testing.T, h Harness) {
	s := spec(t, h, "cat in.txt; echo written > out.txt")
	os.Chmod(s.RunDir, 0o777)
	os.WriteFile(filepath.Join(s.RunDir, "in.txt"), []byte("from the host\n"), 0o644)
	exit, stdout, stderr := run(t, h, s)
	if exit.Code != 0 || stdout != "from the host\n" {
		t.Errorf("exit %+v, stdout %q, stderr %q", exit, stdout, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(s.RunDir, "out.txt")); err != nil || string(b) != "written\n" {
		t.Errorf("out.txt: %q, %v", b, err)
	}
}

func environment(t *testing.T, h Harness) {
	s := spec(t, h, `printf '%s|%s|%s\n' "$A" "$B" "$EMPTY"; env | grep -c '^B='`)
	s.Env = append(s.Env, "A=1", "B=two words", "EMPTY=")
	if _, stdout, _ := run(t, h, s); stdout != "1|two words|\n1\n" {
		t.Errorf("stdout %q", stdout)
	}
}

// labelsAndRemoval: while it runs, the container carries its labels; when
// Run returns, it is gone.
func labelsAndRemoval(t *testing.T, h Harness) {
	if h.Labelled == nil {
		t.Skip("the harness cannot list containers")
	}
	s := spec(t, h, "i=0; while [ ! -f go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, err := h.Engine.Run(ctx, s, &bytes.Buffer{}, &bytes.Buffer{})
		done <- err
	}()
	found := false
	// A started container carries its labels at once; 20 s is for a loaded machine.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !found; time.Sleep(50 * time.Millisecond) {
		ids, err := h.Labelled(context.Background(), containers.LabelStep, "check")
		if err != nil {
			t.Fatal(err)
		}
		mine, _ := h.Labelled(context.Background(), containers.LabelRun, s.Labels[containers.LabelRun])
		found = len(ids) > 0 && len(mine) == 1
	}
	os.WriteFile(filepath.Join(s.RunDir, "go"), nil, 0o666)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Error("no running container carried the spec's labels")
	}
	assertGone(t, h, s)
}

// cancel: ending ctx stops the container; Run returns an error wrapping
// ctx's error, soon, and leaves nothing behind.
func cancel(t *testing.T, h Harness) {
	s := spec(t, h, "echo started; sleep 60")
	w := &watchWriter{want: "started\n", seen: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := h.Engine.Run(ctx, s, w, &bytes.Buffer{})
		done <- err
	}()
	select {
	case <-w.seen:
	case <-time.After(timeout):
		t.Fatal("the container printed nothing")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run after cancel: %v, want an error wrapping context.Canceled", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return within 15s of its context's end")
	}
	assertGone(t, h, s)
}

// hardened: a container has no capabilities and cannot gain privileges
// (docs/security.md): a step cannot make a device or a setuid file count.
func hardened(t *testing.T, h Harness) {
	s := spec(t, h, `grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status | tr -s ' \t' ' '; mknod dev c 1 3 2>/dev/null && echo MKNOD`)
	os.Chmod(s.RunDir, 0o777)
	want := "CapEff: 0000000000000000\nCapBnd: 0000000000000000\nNoNewPrivs: 1\n"
	if h.Gaps.NoNewPrivileges != "" {
		t.Logf("not checking no-new-privileges: %s", h.Gaps.NoNewPrivileges)
		want = strings.Replace(want, "NoNewPrivs: 1", "NoNewPrivs: 0", 1)
	}
	if _, stdout, _ := run(t, h, s); stdout != want {
		t.Errorf("got %q, want %q: no effective nor bounding capability, no new privileges, no mknod", stdout, want)
	}
}

func workDir(t *testing.T, h Harness) {
	if _, stdout, _ := run(t, h, spec(t, h, "pwd")); stdout != "/wflow\n" {
		t.Errorf("pwd %q, want /wflow", stdout)
	}
}

// records: the records folder of the run directory is read-only inside the
// container, however it is reached.
func records(t *testing.T, h Harness) {
	s := spec(t, h, `echo forged > .wflow/x 2>/dev/null && echo WROTE; mkdir .wflow/d 2>/dev/null && echo MADE; cat .wflow/r && echo READ`)
	os.Chmod(s.RunDir, 0o777)
	os.WriteFile(filepath.Join(s.RunDir, ".wflow", "r"), []byte("r\n"), 0o644)
	_, stdout, _ := run(t, h, s)
	if stdout != "r\nREAD\n" {
		t.Errorf("stdout %q: want the records readable, not writable", stdout)
	}
	if _, err := os.Stat(filepath.Join(s.RunDir, ".wflow", "x")); err == nil {
		t.Error(".wflow/x was written")
	}
}

// cgroupValue prints a cgroup setting under v1 or v2, whichever the host has.
const cgroupValue = `v() { cat "/sys/fs/cgroup/$1" 2>/dev/null || cat "/sys/fs/cgroup/$2" 2>/dev/null || echo "?"; }; `

func limits(t *testing.T, h Harness) {
	s := spec(t, h, cgroupValue+`v memory/memory.limit_in_bytes memory.max; v pids/pids.max pids.max; v cpu/cpu.cfs_quota_us cpu.max; id -u; id -g; touch /x 2>/dev/null && echo writable || echo read-only; v memory/memory.memsw.limit_in_bytes memory.swap.max`)
	s.Limits = step.Limits{Network: "none", Memory: 32 << 20, Pids: 64, CPUs: 1.5, User: "1234:2345", ReadOnly: true}
	exit, stdout, stderr := run(t, h, s)
	var first []string
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			first = append(first, f[0])
		}
	}
	if len(first) != 7 {
		t.Fatalf("exit %+v, got %q (stderr %q)", exit, stdout, stderr)
	}
	if want := "33554432 64 150000 1234 2345 read-only"; exit.Code != 0 || strings.Join(first[:6], " ") != want {
		t.Errorf("exit %+v, got %q, want %q (stderr %q)", exit, strings.Join(first[:6], " "), want, stderr)
	}
	// No swap beyond the memory limit: memory+swap equal to it (cgroup
	// v1), or no swap (v2); "?" where the host accounts no swap.
	switch swap := first[6]; {
	case swap == "?":
		t.Logf("swap not checked: the host does not account it")
	case h.Gaps.SwapLimited != "":
		t.Logf("swap limit %s not checked: %s", swap, h.Gaps.SwapLimited)
	case swap != "33554432" && swap != "0":
		t.Errorf("swap limit %s: want memory+swap at the memory limit (33554432) or no swap (0)", swap)
	}
}

// noNetwork: a container on network "none" has no route out and cannot
// reach a listener on any address of the host; it has no interface but lo
// unless the engine cannot do that (Gaps.OnlyLoopback).
func noNetwork(t *testing.T, h Harness) {
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	reached := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			reached <- c.RemoteAddr().String()
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	hosts := []string{"127.0.0.1"}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ip, ok := a.(*net.IPNet); ok && ip.IP.To4() != nil {
				hosts = append(hosts, ip.IP.String())
			}
		}
	}
	script := fmt.Sprintf(`ls /sys/class/net | tr '\n' ' '; echo; ip route | grep -q '^default' && echo ROUTE; for h in %s; do echo x | nc -w 1 $h %d >/dev/null 2>&1 && echo "REACHED $h"; done; true`, strings.Join(hosts, " "), port)
	_, stdout, stderr := run(t, h, spec(t, h, script))
	lines := strings.SplitN(stdout, "\n", 2)
	if ifs := strings.TrimSpace(lines[0]); ifs != "lo" {
		if h.Gaps.OnlyLoopback == "" {
			t.Errorf("interfaces %q, want only lo", ifs)
		} else {
			t.Logf("interfaces %q: %s", ifs, h.Gaps.OnlyLoopback)
		}
	}
	if len(lines) > 1 && strings.TrimSpace(lines[1]) != "" {
		t.Errorf("a container without network got out: %q (stderr %q)", lines[1], stderr)
	}
	select {
	case from := <-reached:
		t.Errorf("the host's listener was reached from %s", from)
	default:
	}
}

func oom(t *testing.T, h Harness) {
	s := spec(t, h, `x=$(head -c 64000000 /dev/zero | tr "\0" a); echo ${#x}`)
	s.Limits.Memory = 16 << 20
	exit, _, _ := run(t, h, s)
	switch {
	case h.Gaps.OOMReported != "":
		t.Logf("not checking that the OOM is reported: %s", h.Gaps.OOMReported)
		if exit.Code != 137 {
			t.Errorf("exit %+v, want killed (137) at the memory limit", exit)
		}
	case !exit.OOMKilled || exit.Code == 0:
		t.Errorf("exit %+v, want OOMKilled", exit)
	}
	assertGone(t, h, s)
}

// resources: a container holding about 40 MB for two seconds, and busy
// for part of them, is measured as such: the peak its own (not the host's),
// the CPU time no more than its cores could give it.
func resources(t *testing.T, h Harness) {
	s := spec(t, h, `x=$(head -c 20000000 /dev/zero | tr "\0" a); i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 2; echo ${#x}`)
	start := time.Now()
	exit, stdout, _ := run(t, h, s)
	wall := time.Since(start)
	u := exit.Usage
	switch {
	case h.Gaps.NoResources != "":
		t.Logf("not checking what the container used: %s", h.Gaps.NoResources)
		if u != nil {
			t.Errorf("usage %+v from an engine said to measure none", *u)
		}
	case exit.Code != 0 || strings.TrimSpace(stdout) != "20000000":
		t.Errorf("exit %+v, stdout %q", exit, stdout)
	case u == nil:
		t.Errorf("nothing measured of a container that ran %s", wall)
	case u.PeakMemoryBytes < 20e6 || u.PeakMemoryBytes > 1<<30:
		t.Errorf("peak memory %d bytes, want 20 MB to 1 GiB", u.PeakMemoryBytes)
	case u.CPUMS <= 0 || time.Duration(u.CPUMS)*time.Millisecond > wall*time.Duration(max(1, runtime.NumCPU())):
		t.Errorf("CPU time %d ms in %s", u.CPUMS, wall)
	}
}

// watchWriter keeps what it is written and closes seen once it holds want.
type watchWriter struct {
	syncBuffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *watchWriter) Write(p []byte) (int, error) {
	n, err := w.syncBuffer.Write(p)
	if strings.Contains(w.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
