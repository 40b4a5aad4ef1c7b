// Package testenv gives wflow's tests what they need from the machine: a
// Docker daemon, the local test images, and guests compiled from source
// (Go with GOOS=wasip1, C with clang, .wat with wabt's wat2wasm).
//
// Where a tool or the daemon is missing a test skips, except in CI (CI=true),
// where it fails: CI must prove everything.
package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/containers/docker"
	"github.com/wflow/wflow/containers/podman"
	"github.com/wflow/wflow/containers/swarm"
)

// BusyboxImage is the local shell image built by scripts/build-test-images.sh.
const BusyboxImage = "wflow-test/busybox:latest"

// InCI reports whether the tests run in CI, where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips the test, or fails it in CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("CI=true and %s", msg)
	}
	t.Skip(msg)
}

// Docker returns an engine on the local daemon and checks that the test
// image is present; it skips (fails in CI) when either is missing.
func Docker(t testing.TB) *docker.Engine {
	t.Helper()
	e, err := docker.New(context.Background())
	if err != nil {
		Missing(t, "no Docker daemon: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	if _, err := e.EnsureImage(context.Background(), BusyboxImage, containers.PullNever); err != nil {
		Missing(t, "test image missing (run scripts/build-test-images.sh): %v", err)
	}
	return e
}

// Podman returns an engine on Podman's API service (CONTAINER_HOST, default
// its root socket, which scripts/podman-service.sh starts) and checks that
// the test image was loaded into it; it skips (fails in CI) when either is
// missing.
func Podman(t testing.TB) *podman.Engine {
	t.Helper()
	e, err := podman.New(context.Background())
	if err != nil {
		Missing(t, "no Podman service (run scripts/podman-service.sh start): %v", err)
	}
	t.Cleanup(func() { e.Close() })
	if _, err := e.EnsureImage(context.Background(), BusyboxImage, containers.PullNever); err != nil {
		Missing(t, "test image missing in Podman (run scripts/podman-service.sh start): %v", err)
	}
	return e
}

// Swarm returns an engine on the local Docker engine as a swarm manager
// and checks the test image; it skips (fails in CI) when the engine is not
// in a swarm (docker swarm init --advertise-addr 127.0.0.1).
//
// Debian's Docker (20.10) cannot set no-new-privileges on a job, so the
// test accepts that as a user must (WFLOW_SWARM_NEW_PRIVILEGES=allow, for
// this test and the wflow processes it starts); swarm's own tests check
// the refusal without it.
func Swarm(t testing.TB) *swarm.Engine {
	t.Helper()
	Docker(t)
	t.Setenv(swarm.AllowNewPrivileges, "allow")
	e, err := swarm.New(context.Background())
	if err != nil {
		Missing(t, "no swarm: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// Root returns the repository's root folder.
func Root() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	buildMu    sync.Mutex
	buildCache = map[string]string{}
	buildDir   string
)

// outDir is a folder shared by the builds of one test process.
func outDir(t testing.TB) string {
	if buildDir == "" {
		d, err := os.MkdirTemp("", "wflow-test-build-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	return buildDir
}

// Cleanup removes the build folder; call it from TestMain after m.Run.
func Cleanup() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

func build(t testing.TB, key, out string, tool string, args func(out string) []string, env []string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := buildCache[key]; ok {
		return p
	}
	if _, err := exec.LookPath(tool); err != nil {
		Missing(t, "%s not installed (see .ci/run)", tool)
	}
	path := filepath.Join(outDir(t), out)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, args(path)...)
	cmd.Dir = Root()
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
	}
	buildCache[key] = path
	return path
}

// GoGuest compiles the Go package (a path relative to the repository root,
// e.g. "./examples/go-pipeline") for wasip1 and returns the module's path.
func GoGuest(t testing.TB, pkg string) string {
	t.Helper()
	name := strings.ReplaceAll(strings.Trim(pkg, "./"), "/", "_") + ".wasm"
	return build(t, "go:"+pkg, name, "go", func(out string) []string { return []string{"build", "-trimpath", "-o", out, pkg} }, []string{"GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0"})
}

// GoGuestWithLDFlags compiles the Go package as GoGuest does, with
// -ldflags (e.g. "-X main.variant=edited": another module from the same
// source).
func GoGuestWithLDFlags(t testing.TB, pkg, ldflags string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(ldflags))
	name := strings.ReplaceAll(strings.Trim(pkg, "./"), "/", "_") + "-" + hex.EncodeToString(sum[:4]) + ".wasm"
	return build(t, "go:"+pkg+" "+ldflags, name, "go", func(out string) []string {
		return []string{"build", "-trimpath", "-ldflags", ldflags, "-o", out, pkg}
	}, []string{"GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0"})
}

// CGuest compiles a C file (relative to the repository root) with clang
// for wasm32-wasi against sdk/c and returns the module's path.
func CGuest(t testing.TB, file string) string {
	t.Helper()
	name := strings.ReplaceAll(strings.Trim(file, "./"), "/", "_") + ".wasm"
	return build(t, "c:"+file, name, "clang", func(out string) []string {
		return []string{"--target=wasm32-wasi", "-O2", "-Wall", "-Werror", "-I", "sdk/c", "-o", out, file}
	}, nil)
}

// Wat compiles a .wat file (relative to the repository root) with wat2wasm
// and returns the module's bytes.
func Wat(t testing.TB, file string) []byte {
	t.Helper()
	name := strings.ReplaceAll(strings.Trim(file, "./"), "/", "_") + ".wasm"
	path := build(t, "wat:"+file, name, "wat2wasm", func(out string) []string { return []string{file, "-o", out} }, nil)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Leftovers returns the ids of containers that this test process started
// (label io.wflow.pid) and that still exist, or nil when no daemon answers.
// Packages test in parallel processes, so each checks only its own.
// On a swarm, its jobs count too; so do Podman's containers when its
// service answers.
func Leftovers() []string {
	pid := strconv.Itoa(os.Getpid())
	var left []string
	type labelled interface {
		Labelled(ctx context.Context, key, value string) ([]string, error)
		Close() error
	}
	var engines []labelled
	if e, err := swarm.New(context.Background()); err == nil {
		engines = append(engines, e)
	} else if e, err := docker.New(context.Background()); err == nil {
		engines = append(engines, e)
	}
	if e, err := podman.New(context.Background()); err == nil {
		engines = append(engines, e)
	}
	for _, e := range engines {
		ids, _ := e.Labelled(context.Background(), containers.LabelPID, pid)
		left = append(left, ids...)
		e.Close()
	}
	return left
}

// MainWithLeakCheck runs the tests, then fails the package when a container
// it started remains; use it as TestMain's body: os.Exit(MainWithLeakCheck(m)).
func MainWithLeakCheck(m *testing.M) int {
	code := m.Run()
	Cleanup()
	if left := Leftovers(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d container(s) started by these tests remain: %v\n", len(left), left)
		return 1
	}
	return code
}

// GoGuestWithToolchain compiles the main package in dir (relative to the
// repository root) as a module of its own, declared `go <version>`, with
// that Go toolchain (GOTOOLCHAIN=go<version>, fetched through the module
// proxy), against the SDK in this repository. It proves the SDK builds with
// the oldest Go the ABI promises.
func GoGuestWithToolchain(t testing.TB, dir, version string) string {
	t.Helper()
	mod := t.TempDir()
	src, err := os.ReadFile(filepath.Join(Root(), dir, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	gomod := fmt.Sprintf(`module example.com/guest

go %s

require (
	github.com/wflow/wflow/abi v0.0.0
	github.com/wflow/wflow/sdk/go v0.0.0
)

replace github.com/wflow/wflow/abi => %s
replace github.com/wflow/wflow/sdk/go => %s
`, version, filepath.Join(Root(), "abi"), filepath.Join(Root(), "sdk", "go"))
	os.WriteFile(filepath.Join(mod, "go.mod"), []byte(gomod), 0o644)
	os.WriteFile(filepath.Join(mod, "main.go"), src, 0o644)
	out := filepath.Join(mod, "guest.wasm")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, ".")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOTOOLCHAIN=go"+version, "GOFLAGS=-mod=mod")
	if b, err := cmd.CombinedOutput(); err != nil {
		if strings.Contains(string(b), "downloading go"+version) && !strings.Contains(string(b), ".go:") {
			Missing(t, "Go %s toolchain not available: %s", version, b)
		}
		t.Fatalf("go build with Go %s: %v\n%s", version, err, b)
	}
	return out
}

// Wflow builds the wflow command once per test process and returns its path,
// for tests that need a real process (signals).
func Wflow(t testing.TB) string {
	t.Helper()
	return build(t, "wflow", "wflow", "go", func(out string) []string { return []string{"build", "-o", out, "./cmd/wflow"} }, nil)
}

// PythonImage is the local notebook test image (scripts/build-test-images.sh):
// Debian's Python with nbclient and the TEST-ONLY papermill stand-in.
const PythonImage = "wflow-test/python:latest"

// NotebookFlags are the `wflow run` flags that make notebook steps use the
// test image and the test-only Dockerfile template (no registry, no PyPI).
func NotebookFlags() []string {
	return []string{"--notebook-base", PythonImage, "--notebook-dockerfile", filepath.Join(Root(), "testdata", "notebook", "Dockerfile.test.tmpl")}
}

// Python checks that the notebook test image is present, like Docker does
// for the engine and the busybox image.
func Python(t testing.TB) *docker.Engine {
	t.Helper()
	e := Docker(t)
	if ok, err := e.ImageExists(context.Background(), PythonImage); err != nil || !ok {
		Missing(t, "notebook test image %s missing (run scripts/build-test-images.sh): %v", PythonImage, err)
	}
	return e
}

// ASGuest compiles the AssemblyScript example with the compiler `npm ci`
// installed in examples/assemblyscript (scripts/setup.sh does it).
func ASGuest(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(Root(), "examples", "assemblyscript")
	asc := filepath.Join(dir, "node_modules", ".bin", "asc")
	if _, err := os.Stat(asc); err != nil {
		Missing(t, "AssemblyScript compiler missing (run `npm ci` in examples/assemblyscript): %v", err)
	}
	return build(t, "as:example", "assemblyscript.wasm", asc, func(out string) []string {
		// Paths relative to the repository root, where build runs it: --use
		// names the abort function by its file's path.
		return []string{"examples/assemblyscript/main.ts", "-o", out, "--exportStart", "_start",
			"--use", "abort=examples/assemblyscript/main/abort", "--runtime", "stub", "-O"}
	}, nil)
}

// RustGuest compiles a Rust file (relative to the repository root) for
// wasm32-wasi with Debian's rustc (/usr/bin/rustc, with
// libstd-rust-dev-wasm32: scripts/setup.sh installs them).
func RustGuest(t testing.TB, file string) string {
	t.Helper()
	if _, err := os.Stat("/usr/lib/rustlib/wasm32-wasi"); err != nil {
		Missing(t, "Rust's WASI standard library missing (apt-get install rustc libstd-rust-dev-wasm32): %v", err)
	}
	name := strings.ReplaceAll(strings.Trim(file, "./"), "/", "_") + ".wasm"
	return build(t, "rust:"+file, name, "/usr/bin/rustc", func(out string) []string {
		return []string{"--edition", "2021", "--target", "wasm32-wasi", "-O", "-o", out, file}
	}, nil)
}

// Knocks listens on a free port of 127.0.0.1 and counts the connections
// made to it, for tests that prove nothing contacts an address (a registry
// named in an image, say). It returns host:port and the count so far; the
// listener closes when the test ends.
func Knocks(t testing.TB) (addr string, count func() int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), n.Load
}

// Chromium returns the path of Debian's chromium, for tests that load a
// page in a real browser (headless); it skips (fails in CI) without one.
func Chromium(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		Missing(t, "no chromium (apt-get install chromium): %v", err)
	}
	return path
}

// OPA returns the path of the opa CLI (scripts/opa.sh builds it into
// ~/.cache/wflow-opa, as .ci/run does); it skips (fails in CI) without one.
func OPA(t testing.TB) string {
	t.Helper()
	cache, err := os.UserCacheDir() // $XDG_CACHE_HOME or ~/.cache, as scripts/opa.sh
	path := filepath.Join(cache, "wflow-opa", "v1.22.3", "opa")
	if _, serr := os.Stat(path); err != nil || serr != nil {
		Missing(t, "no opa CLI at %s (scripts/opa.sh builds it)", path)
	}
	return path
}

// RegoBundle compiles a Rego file with the opa CLI (opa build -t wasm) for
// the entrypoints given, and returns the bundle's path. An argument that
// starts with "-" is passed to opa build as a flag
// (--wasm-include-print).
func RegoBundle(t testing.TB, rego string, entrypoints ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(rego), ".rego")+".tar.gz")
	args := []string{"build", "-t", "wasm", "-o", out}
	for _, e := range entrypoints {
		if strings.HasPrefix(e, "-") {
			args = append(args, e)
		} else {
			args = append(args, "-e", e)
		}
	}
	cmd := exec.Command(OPA(t), append(args, filepath.Join(Root(), rego))...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("opa build %s: %v\n%s", rego, err, b)
	}
	return out
}
