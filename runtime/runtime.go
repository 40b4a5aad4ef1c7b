// Package runtime runs a workflow module: it owns wazero. It compiles the
// module (with an on-disk compilation cache), checks its imports, gives it
// WASI with the run directory preopened and nothing else of the host, the
// host functions of the ABI, a memory limit and a wall-clock limit, and maps
// the way the module ended to an Outcome.
package runtime

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wflow/wflow/abi"
)

// HostModule defines the ABI's host module in a runtime; hostfuncs.Host
// implements it.
type HostModule interface {
	Instantiate(ctx context.Context, r wazero.Runtime) error
}

// Config configures Run. RunDir is required; the zero value of every other
// field means its default.
type Config struct {
	RunDir         string        // host folder preopened at abi.RunDirMountPoint
	Records        string        // a folder of RunDir the module may read but not change; "" for none
	MemoryLimitMiB uint32        // guest memory cap; 0 means DefaultMemoryLimitMiB
	Timeout        time.Duration // wall-clock limit of the module; 0 means none
	CacheDir       string        // wflow's cache folder (compiled modules in CompilationCacheDir); "" means DefaultCacheDir()
	Args           []string      // the guest's argv; nil means ["workflow"]
	Stdout, Stderr io.Writer     // the guest's own stdout and stderr; nil discards
	// Pretend makes every change the module makes to the run directory
	// succeed and change nothing: it reads the run directory as it is. What
	// a replay gives it.
	Pretend bool
}

// Clocks are the sources of a module's nondeterminism besides its host
// calls and files: what it reads through WASI's clocks, random_get and
// poll_oneoff. wflow run records what they hand out; wflow replay feeds it
// back. Every field must be set.
type Clocks struct {
	Walltime func() (sec int64, nsec int32) // the wall clock
	Nanotime func() int64                   // the monotonic clock, in ns
	Random   io.Reader                      // random_get
	// Sleep is poll_oneoff on a clock; ctx ends with the run.
	Sleep func(ctx context.Context, ns int64)
}

// SystemClocks are the host's clocks, crypto/rand and a sleep cut short
// when the run ends.
func SystemClocks() *Clocks {
	start := time.Now()
	return &Clocks{
		Walltime: func() (int64, int32) {
			t := time.Now()
			return t.Unix(), int32(t.Nanosecond())
		},
		Nanotime: func() int64 { return int64(time.Since(start)) },
		Random:   rand.Reader,
		Sleep:    sleepUntilDone,
	}
}

// DefaultMemoryLimitMiB is the guest memory cap when Config leaves it zero.
const DefaultMemoryLimitMiB = 256

// Status of a finished module.
const (
	StatusSucceeded = "succeeded" // _start returned or the module exited 0
	StatusFailed    = "failed"    // the module exited non-zero
	StatusTrapped   = "trapped"   // the module trapped (unreachable, out of bounds, ...)
	StatusTimeout   = "timeout"   // the wall-clock limit ended it
	StatusCancelled = "cancelled" // the caller's context ended it (SIGINT)
	StatusLimit     = "limit"     // the host ended it for going over its host-call budget
)

// Outcome is how a module ended.
type Outcome struct {
	Status   string `json:"status"`
	ExitCode uint32 `json:"exit_code"` // the module's exit code; 1 when it trapped or was stopped
	Message  string `json:"message,omitempty"`
}

// InvalidModuleError is returned by Run when the module cannot run at all.
type InvalidModuleError struct {
	Problems []string
}

// Error lists the problems in one line.
func (e *InvalidModuleError) Error() string {
	return "invalid module: " + strings.Join(e.Problems, "; ")
}

// DefaultCacheDir is wflow's cache folder: the user's cache folder
// ($XDG_CACHE_HOME, ~/.cache) plus "wflow", "" when there is none. The
// compilation cache is its CompilationCacheDir, the step cache its "steps".
func DefaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "wflow")
}

// CompilationCacheDir is where compiled modules are kept in wflow's cache
// folder dir; "" (no cache) for "".
func CompilationCacheDir(dir string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "wazero")
}

// Compiled is a module compiled in a wazero runtime of its own, with a
// memory cap, WithCloseOnContextDone and the on-disk compilation cache, its
// imports checked against a host ABI. Workflow modules (Compile) and the
// policy sandbox (package policies) are built on it.
type Compiled struct {
	Runtime wazero.Runtime
	Module  wazero.CompiledModule
	cache   wazero.CompilationCache // nil without a cache folder
}

// CompileFor compiles wasm for host. memoryLimitMiB caps the module's memory
// (at most 4096); cacheDir "" compiles without a cache. A module that cannot
// run gives an *InvalidModuleError. Close the result when done.
func CompileFor(ctx context.Context, wasm []byte, host HostABI, memoryLimitMiB uint32, cacheDir string) (*Compiled, error) {
	if memoryLimitMiB == 0 || memoryLimitMiB > 4096 {
		return nil, fmt.Errorf("memory limit %d MiB: use 1 to 4096 (a 32-bit module addresses at most 4 GiB)", memoryLimitMiB)
	}
	c := &Compiled{}
	rc := wazero.NewRuntimeConfig().
		WithMemoryLimitPages(memoryLimitMiB * 16). // 64 KiB pages
		WithCloseOnContextDone(true)               // the only way a cancelled context stops a spinning guest
	if cacheDir != "" {
		if cache, err := wazero.NewCompilationCacheWithDir(cacheDir); err == nil {
			c.cache = cache
			rc = rc.WithCompilationCache(cache)
		} // without a usable cache folder, compile every time
	}
	c.Runtime = wazero.NewRuntimeWithConfig(ctx, rc)
	compiled, err := c.Runtime.CompileModule(ctx, wasm)
	if err != nil {
		c.Close(ctx)
		return nil, &InvalidModuleError{Problems: []string{"not a valid Wasm module: " + err.Error()}}
	}
	c.Module = compiled
	v, err := CheckImports(ctx, c.Runtime, compiled, host)
	if err == nil && !v.OK() {
		err = &InvalidModuleError{Problems: v.Problems}
	}
	if err != nil {
		c.Close(ctx)
		return nil, err
	}
	return c, nil
}

// Close releases the runtime and the cache, even under a cancelled context.
func (c *Compiled) Close(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	err := c.Runtime.Close(ctx)
	if c.cache != nil {
		c.cache.Close(ctx)
	}
	return err
}

// Module is a compiled, validated workflow module, ready to run once.
type Module struct {
	*Compiled
	cfg Config
}

// Compile compiles a workflow module (reusing the on-disk cache) and checks
// its imports against the workflow ABI. A module that cannot run gives an
// *InvalidModuleError. Close the Module when done.
func Compile(ctx context.Context, cfg Config, wasm []byte) (*Module, error) {
	if cfg.MemoryLimitMiB == 0 {
		cfg.MemoryLimitMiB = DefaultMemoryLimitMiB
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = DefaultCacheDir()
	}
	if cfg.Args == nil {
		cfg.Args = []string{"workflow"}
	}
	c, err := CompileFor(ctx, wasm, WorkflowABI, cfg.MemoryLimitMiB, CompilationCacheDir(cfg.CacheDir))
	if err != nil {
		return nil, err
	}
	return &Module{Compiled: c, cfg: cfg}, nil
}

// Run instantiates WASI, the host module and the workflow module, whose
// _start runs the workflow, and returns how it ended. clocks nil means
// SystemClocks. The error is for host failures only; a module that
// trapped, exited non-zero or ran out of time is an Outcome.
func (m *Module) Run(ctx context.Context, host HostModule, clocks *Clocks) (Outcome, error) {
	cfg := m.cfg
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, m.Runtime); err != nil {
		return Outcome{}, fmt.Errorf("instantiate WASI: %w", err)
	}
	if err := host.Instantiate(ctx, m.Runtime); err != nil {
		return Outcome{}, fmt.Errorf("instantiate %s: %w", abi.ModuleName, err)
	}

	rundir, err := newRootFS(cfg.RunDir, cfg.Records, cfg.Pretend)
	if err != nil {
		return Outcome{}, fmt.Errorf("run directory: %w", err)
	}
	defer rundir.Close()
	runCtx := ctx
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	// The run directory is preopened twice: at /wflow, its documented path,
	// and at /, so that relative paths are in it for every WASI libc. Go's
	// wasip1 port resolves them against $PWD (/wflow); wasi-libc (C, Rust's
	// std) against its own working directory, which starts at / and which
	// WASI gives no way to set.
	fsConfig := wazero.NewFSConfig().(sysfs.FSConfig).WithSysFSMount(rundir, abi.RunDirMountPoint).(sysfs.FSConfig).WithSysFSMount(rundir, "/")
	if clocks == nil {
		clocks = SystemClocks()
	}
	mc := wazero.NewModuleConfig().
		WithName("workflow").
		WithArgs(cfg.Args...).
		WithEnv("PWD", abi.RunDirMountPoint). // Go's wasip1 port resolves relative paths against $PWD
		WithFSConfig(fsConfig).
		WithWalltime(clocks.Walltime, sys.ClockResolution(1)).
		WithNanotime(clocks.Nanotime, sys.ClockResolution(1)).
		WithNanosleep(func(ns int64) { clocks.Sleep(runCtx, ns) }).
		WithRandSource(clocks.Random)
	if cfg.Stdout != nil {
		mc = mc.WithStdout(cfg.Stdout)
	}
	if cfg.Stderr != nil {
		mc = mc.WithStderr(cfg.Stderr)
	}

	mod, err := m.Runtime.InstantiateModule(runCtx, m.Module, mc)
	if mod != nil {
		defer mod.Close(context.WithoutCancel(ctx))
	}
	if err == nil && runCtx.Err() != nil {
		// The limit cut a sleep or a host call short and the module then
		// returned: the run still overstayed its limit.
		err = sys.NewExitError(sys.ExitCodeDeadlineExceeded)
	}
	return outcome(ctx, cfg, err), nil
}

// sleepUntilDone is the module's sleep (WASI poll_oneoff on a clock): it
// ends early when ctx does, so that a module asleep for 2^63 ns still stops
// at --timeout or an interrupt. wazero's close-on-done then ends the module.
func sleepUntilDone(ctx context.Context, ns int64) {
	if ns <= 0 {
		return
	}
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// outcome maps the error of a module's _start to an Outcome.
func outcome(parent context.Context, cfg Config, err error) Outcome {
	if parent.Err() != nil {
		// Interrupted: even if the module then returned normally (its last
		// step came back cancelled and it had nothing left to do), the run
		// was cancelled and says so.
		return Outcome{Status: StatusCancelled, ExitCode: 1, Message: "the run was cancelled"}
	}
	if err == nil {
		return Outcome{Status: StatusSucceeded}
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch code := exit.ExitCode(); {
		case code == 0:
			return Outcome{Status: StatusSucceeded}
		case code == sys.ExitCodeDeadlineExceeded || code == sys.ExitCodeContextCanceled:
			if parent.Err() != nil {
				return Outcome{Status: StatusCancelled, ExitCode: 1, Message: "the run was cancelled"}
			}
			return Outcome{Status: StatusTimeout, ExitCode: 1,
				Message: fmt.Sprintf("the module ran longer than its wall-clock limit of %s (--timeout)", cfg.Timeout)}
		default:
			return Outcome{Status: StatusFailed, ExitCode: code, Message: fmt.Sprintf("the module exited with code %d", code)}
		}
	}
	if parent.Err() != nil {
		return Outcome{Status: StatusCancelled, ExitCode: 1, Message: "the run was cancelled"}
	}
	return Outcome{Status: StatusTrapped, ExitCode: 1, Message: "the module trapped: " + TrapMessage(err)}
}

// TrapMessage returns the name of a trap from the error wazero gives: its
// first line from "wasm error:" on, without the wasm stack trace after it.
func TrapMessage(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	if i := strings.Index(msg, "wasm error: "); i >= 0 {
		msg = msg[i:]
	}
	return msg
}
