package runtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"golang.org/x/sys/unix"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wflow/wflow/hostfuncs"
	"github.com/wflow/wflow/internal/testenv"
	"github.com/wflow/wflow/runtime"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}

// run compiles and runs a .wat fixture with a Host that has no steps.
func run(t *testing.T, fixture string, cfg runtime.Config) (runtime.Outcome, *hostfuncs.Host, error) {
	t.Helper()
	return runModule(t, testenv.Wat(t, fixture), cfg)
}

// runModule compiles and runs a module with a Host that has no steps, in
// cfg.RunDir (a new folder when empty).
func runModule(t *testing.T, wasm []byte, cfg runtime.Config) (runtime.Outcome, *hostfuncs.Host, error) {
	t.Helper()
	if cfg.RunDir == "" {
		cfg.RunDir = t.TempDir()
	}
	cfg.CacheDir = t.TempDir()
	ctx := context.Background()
	mod, err := runtime.Compile(ctx, cfg, wasm)
	if err != nil {
		return runtime.Outcome{}, nil, err
	}
	defer mod.Close(ctx)
	host := hostfuncs.New(ctx, hostfuncs.Config{Runner: nil})
	defer host.Shutdown()
	out, err := mod.Run(ctx, host, nil)
	return out, host, err
}

func TestOutcomes(t *testing.T) {
	cases := []struct {
		fixture string
		cfg     runtime.Config
		status  string
		code    uint32
		msg     string
	}{
		{"testdata/hello.wat", runtime.Config{}, runtime.StatusSucceeded, 0, ""},
		{"testdata/hostile/exit_code.wat", runtime.Config{}, runtime.StatusFailed, 7, "exited with code 7"},
		{"testdata/hostile/trap.wat", runtime.Config{}, runtime.StatusTrapped, 1, "unreachable"},
		{"testdata/hostile/loop.wat", runtime.Config{Timeout: 300 * time.Millisecond}, runtime.StatusTimeout, 1, "wall-clock limit of 300ms"},
		{"testdata/hostile/grow_bomb.wat", runtime.Config{MemoryLimitMiB: 2}, runtime.StatusFailed, 3, "exited with code 3"},
	}
	for _, c := range cases {
		t.Run(c.fixture, func(t *testing.T) {
			start := time.Now()
			out, host, err := run(t, c.fixture, c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if out.Status != c.status || out.ExitCode != c.code || !strings.Contains(out.Message, c.msg) {
				t.Errorf("outcome %+v, want %s/%d mentioning %q", out, c.status, c.code, c.msg)
			}
			if time.Since(start) > 10*time.Second {
				t.Errorf("took %s", time.Since(start))
			}
			if c.fixture == "testdata/hello.wat" && string(host.Output()) != `{"greeting":"hello"}` {
				t.Errorf("output %s", host.Output())
			}
		})
	}
}

func TestCancelStopsASpinningModule(t *testing.T) {
	wasm := testenv.Wat(t, "testdata/hostile/loop.wat")
	ctx, cancel := context.WithCancel(context.Background())
	mod, err := runtime.Compile(ctx, runtime.Config{RunDir: t.TempDir(), CacheDir: t.TempDir()}, wasm)
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close(ctx)
	time.AfterFunc(200*time.Millisecond, cancel)
	host := hostfuncs.New(ctx, hostfuncs.Config{})
	defer host.Shutdown()
	out, err := mod.Run(ctx, host, nil)
	if err != nil || out.Status != runtime.StatusCancelled {
		t.Errorf("outcome %+v, %v", out, err)
	}
}

func TestInvalidModules(t *testing.T) {
	cases := []struct {
		fixture string
		msgs    []string
	}{
		{"testdata/hostile/wrong_version.wat", []string{`imports ABI "wflow_v2"`, `speaks "wflow_v1"`}},
		{"testdata/hostile/unknown_import.wat", []string{"unknown function wflow_v1.step_teleport", `unknown import module "env"`}},
		{"testdata/hostile/bad_signature.wat", []string{"wflow_v1.log_write has signature (i32)->i32, ABI v1 defines (i32,i32,i32)->i32"}},
		{"testdata/hostile/no_start.wat", []string{"no _start"}},
	}
	for _, c := range cases {
		t.Run(c.fixture, func(t *testing.T) {
			_, _, err := run(t, c.fixture, runtime.Config{})
			var inv *runtime.InvalidModuleError
			if !errors.As(err, &inv) {
				t.Fatalf("err = %v, want an InvalidModuleError", err)
			}
			for _, m := range c.msgs {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("%q does not say %q", err, m)
				}
			}
			v, err := runtime.Validate(context.Background(), testenv.Wat(t, c.fixture))
			if err != nil || v.OK() {
				t.Errorf("Validate = %+v, %v", v, err)
			}
		})
	}
	if _, err := runtime.Compile(context.Background(), runtime.Config{RunDir: t.TempDir()}, []byte("not wasm")); err == nil || !strings.Contains(err.Error(), "not a valid Wasm module") {
		t.Errorf("garbage: %v", err)
	}
}

// goGuest compiles a Go test guest and returns its bytes.
func goGuest(t *testing.T, pkg string) []byte {
	b, err := os.ReadFile(testenv.GoGuest(t, pkg))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestModuleSeesOnlyTheRunDirectory(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(dir+"/input.txt", []byte("from the host"), 0o644)
	out, host, err := runModule(t, goGuest(t, "./testdata/guests/fsprobe"), runtime.Config{RunDir: dir})
	if err != nil || out.Status != runtime.StatusSucceeded {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	want := `{"cwd":"/wflow","env":["PWD=/wflow"],"etc_passwd":false,"input":"from the host","wrote":true}`
	if string(host.Output()) != want {
		t.Errorf("output\n%s\nwant\n%s", host.Output(), want)
	}
	if b, _ := os.ReadFile(dir + "/written.txt"); string(b) != "from the module" {
		t.Errorf("written.txt = %q", b)
	}
}

// cancelOnLog cancels the run when the module logs.
type cancelOnLog struct {
	hostfuncs.Observer
	cancel context.CancelFunc
}

func (c cancelOnLog) Log(int, string) { c.cancel() }

// TestInterruptedRunIsCancelledEvenIfTheModuleReturns: a module that returns
// normally after the run was interrupted (its last call came back, it had
// nothing left to do) still ends a cancelled run.
func TestInterruptedRunIsCancelledEvenIfTheModuleReturns(t *testing.T) {
	wasm := testenv.Wat(t, "testdata/hello.wat") // logs, sets its output, returns
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mod, err := runtime.Compile(ctx, runtime.Config{RunDir: t.TempDir(), CacheDir: t.TempDir()}, wasm)
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close(ctx)
	host := hostfuncs.New(ctx, hostfuncs.Config{Observer: cancelOnLog{cancel: cancel}})
	defer host.Shutdown()
	out, err := mod.Run(ctx, host, nil)
	if err != nil || out.Status != runtime.StatusCancelled {
		t.Errorf("outcome %+v, %v: want cancelled", out, err)
	}
}

// TestModuleCannotFollowLinksOutOfTheRunDirectory: steps write the run
// directory and may plant links there; the module, which runs on the host,
// must not get through one that leads outside.
func TestModuleCannotFollowLinksOutOfTheRunDirectory(t *testing.T) {
	outside, dir := t.TempDir(), t.TempDir()
	os.WriteFile(outside+"/secret.txt", []byte("host secret"), 0o644)
	os.Symlink(outside, dir+"/planted")
	os.Mkdir(dir+"/sub", 0o755)
	os.WriteFile(dir+"/sub/note.txt", []byte("inside"), 0o644)
	os.Symlink("sub", dir+"/inner")
	out, host, err := runModule(t, goGuest(t, "./testdata/guests/linkprobe"), runtime.Config{RunDir: dir})
	if err != nil || out.Status != runtime.StatusSucceeded {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	want := `{"list_outside":false,"mkdir_outside":false,"own_files":true,"read_inside_link":true,"read_outside":false,"remove_outside":false,"rename_outside":false,"write_outside":false}`
	if string(host.Output()) != want {
		t.Errorf("output\n%s\nwant\n%s", host.Output(), want)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("the module wrote outside the run directory: %d entries", len(entries))
	}
}

// TestModuleFileSystemRefusesWhatStepsPlant: the run directory as a step
// leaves it (links to host paths, a FIFO, a device node, a link to the
// records folder) cannot make the module create, truncate, read or stat
// host files, change wflow's records, or hang; the module cannot plant links
// that lead out; ordinary file work still works.
func TestModuleFileSystemRefusesWhatStepsPlant(t *testing.T) {
	base := t.TempDir()
	outside, dir := filepath.Join(base, "outside"), filepath.Join(base, "run")
	os.Mkdir(outside, 0o755)
	os.Mkdir(dir, 0o755)
	os.WriteFile(outside+"/victim.txt", []byte("host data"), 0o644)
	os.WriteFile(outside+"/secret.txt", []byte("host secret"), 0o644)
	os.Symlink("../outside/created.txt", dir+"/dangling")
	os.Symlink(outside+"/victim.txt", dir+"/victim")
	os.Symlink(outside, dir+"/planted")
	if err := syscall.Mkfifo(dir+"/fifo", 0o644); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(dir+"/.wflow", 0o755)
	os.WriteFile(dir+"/.wflow/report.json", []byte("record"), 0o644)
	os.Symlink(".wflow", dir+"/rec")
	device := false
	if err := syscall.Mknod(dir+"/device", syscall.S_IFCHR|0o644, 1<<8|5); err == nil { // /dev/zero, where we may
		device = true
	}

	done := make(chan struct{})
	var out runtime.Outcome
	var host *hostfuncs.Host
	var err error
	go func() {
		defer close(done)
		out, host, err = runModule(t, goGuest(t, "./testdata/guests/fsattack"), runtime.Config{RunDir: dir, Records: ".wflow"})
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the module hangs (on the FIFO?)")
	}
	if err != nil || out.Status != runtime.StatusSucceeded {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	var got map[string]any
	if err := json.Unmarshal(host.Output(), &got); err != nil {
		t.Fatal(err)
	}
	if work := got["ordinary_work"]; work != "ok" {
		t.Errorf("ordinary file work failed at %v", work)
	}
	delete(got, "ordinary_work")
	for k, v := range got {
		want := k == "readlink_own_link" || k == "records_read"
		if k == "read_device" && !device {
			continue
		}
		if v != want {
			t.Errorf("%s = %v, want %v", k, v, want)
		}
	}
	if _, err := os.Stat(outside + "/created.txt"); err == nil {
		t.Error("the module created a file outside the run directory through a dangling link")
	}
	if b, _ := os.ReadFile(outside + "/victim.txt"); string(b) != "host data" {
		t.Errorf("the host file was changed: %q", b)
	}
	if entries, _ := os.ReadDir(dir + "/.wflow"); len(entries) != 1 {
		t.Errorf("the records folder holds %d entries, want the 1 it had", len(entries))
	}
	if b, _ := os.ReadFile(dir + "/.wflow/report.json"); string(b) != "record" {
		t.Errorf("a record was changed: %q", b)
	}
}

// TestModuleFileSystemCannotBeRacedIntoAFIFO: a step swaps a folder the
// module works in for a FIFO (renameat2's exchange: atomic, so the race is
// won often); no open of the module may wait on it.
func TestModuleFileSystemCannotBeRacedIntoAFIFO(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(dir+"/d", 0o755)
	if err := syscall.Mkfifo(dir+"/f", 0o644); err != nil {
		t.Fatal(err)
	}
	stop, swapped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(swapped)
		for {
			select {
			case <-stop:
				return
			default:
				unix.Renameat2(unix.AT_FDCWD, dir+"/d", unix.AT_FDCWD, dir+"/f", unix.RENAME_EXCHANGE)
			}
		}
	}()
	defer func() { close(stop); <-swapped }()
	done := make(chan struct{})
	var out runtime.Outcome
	var err error
	go func() {
		defer close(done)
		out, _, err = runModule(t, goGuest(t, "./testdata/guests/fsrace"), runtime.Config{RunDir: dir})
	}()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		t.Fatal("the module hangs on a FIFO swapped in for its folder")
	}
	if err != nil || out.Status != runtime.StatusSucceeded {
		t.Errorf("outcome %+v, %v", out, err)
	}
}
