package stepcache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wflow/wflow/step"
)

func basicParts() Parts {
	return Parts{Version: KeyVersion, Image: "sha256:" + strings.Repeat("a", 64), Commands: [][]string{{"sh", "-c", "x"}},
		Env: []string{"A=1"}, WorkDir: "/wflow", User: "1000:1000", Network: "none"}
}

// Every part changes the key, and Diff names what changed.
func TestEveryPartChangesTheKey(t *testing.T) {
	base := basicParts()
	for _, c := range []struct {
		change func(*Parts)
		says   string
	}{
		{func(p *Parts) { p.Image = "sha256:" + strings.Repeat("b", 64) }, "the image"},
		{func(p *Parts) { p.Commands = [][]string{{"sh", "-c", "y"}} }, "command 1"},
		{func(p *Parts) { p.Commands = append(p.Commands, []string{"true"}) }, "the commands (1 → 2 commands)"},
		{func(p *Parts) { p.Env = []string{"A=2"} }, "env A (changed)"},
		{func(p *Parts) { p.Env = []string{"A=1", "B=1"} }, "env B (added)"},
		{func(p *Parts) { p.Env = []string{} }, "env A (removed)"},
		{func(p *Parts) { p.WorkDir = "/w" }, "the working directory"},
		{func(p *Parts) { p.User = "0:0" }, "the user"},
		{func(p *Parts) { p.Network = "bridge" }, "the network"},
		{func(p *Parts) { p.Memory = 1 << 20 }, "the memory limit"},
		{func(p *Parts) { p.CPUs = 1 }, "cpus"},
		{func(p *Parts) { p.Pids = 10 }, "pids"},
		{func(p *Parts) { p.ReadOnly = true }, "read_only"},
		{func(p *Parts) { p.Inputs = []Input{{Path: "x", Missing: true}} }, "input x (new input)"},
		{func(p *Parts) { p.Outputs = []string{"y"} }, "the declared outputs"},
	} {
		p := basicParts()
		c.change(&p)
		if p.Key() == base.Key() {
			t.Errorf("%s: the key did not change", c.says)
		}
		if d := Diff(base, p); !strings.Contains(d, c.says) {
			t.Errorf("Diff = %q, want it to say %q", d, c.says)
		}
	}
	if basicParts().Key() != base.Key() || Diff(base, basicParts()) != "" {
		t.Error("the same parts made another key, or a diff")
	}
}

// Env values never reach a miss's explanation: they may be secrets.
func TestDiffNamesEnvVariablesNotValues(t *testing.T) {
	a, b := basicParts(), basicParts()
	a.Env, b.Env = []string{"TOKEN=hunter2"}, []string{"TOKEN=swordfish"}
	if d := Diff(a, b); strings.Contains(d, "hunter2") || strings.Contains(d, "swordfish") || !strings.Contains(d, "TOKEN") {
		t.Errorf("Diff = %q", d)
	}
}

func runDir(t *testing.T, files map[string]string) (string, *os.Root) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return dir, root
}

// Inputs are hashed by content, file by file; what is not a file, folder
// or link, or leads out of the run directory, gives no key.
func TestInputsAreContent(t *testing.T) {
	dir, root := runDir(t, map[string]string{"data/a": "1", "data/sub/b": "2"})
	first, err := ReadInputs(context.Background(), root, []string{"data", "absent"})
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2 || first[0].Missing || len(first[0].Files) != 4 || !first[1].Missing {
		t.Fatalf("inputs: %+v", first)
	}
	os.WriteFile(filepath.Join(dir, "data/sub/b"), []byte("3"), 0o644)
	now, _ := ReadInputs(context.Background(), root, []string{"data", "absent"})
	if d := diffInputs(first, now); len(d) != 1 || d[0] != "input data/sub/b (content)" {
		t.Errorf("diff = %q", d)
	}
	os.Chmod(filepath.Join(dir, "data/a"), 0o755)
	later, _ := ReadInputs(context.Background(), root, []string{"data", "absent"})
	if d := diffInputs(now, later); len(d) != 1 || d[0] != "input data/a (executable bit)" {
		t.Errorf("diff = %q", d)
	}

	os.Symlink("/etc", filepath.Join(dir, "escape"))
	if _, err := ReadInputs(context.Background(), root, []string{"escape"}); err == nil || !strings.Contains(err.Error(), "outside the run directory") {
		t.Errorf("a link out: %v", err)
	}
	syscall.Mkfifo(filepath.Join(dir, "data", "fifo"), 0o644)
	done := make(chan error, 1)
	go func() { _, err := ReadInputs(context.Background(), root, []string{"data"}); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "FIFO") {
			t.Errorf("a FIFO in an input: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hashing an input with a FIFO in it hangs")
	}
}

// put stores a step of the run directory root with outputs outs.
func put(t *testing.T, s *Store, root *os.Root, key string, outs ...string) *Entry {
	t.Helper()
	e := &Entry{Version: KeyVersion, Key: key, Step: "s", RunID: "run1", Created: time.Now(), Result: step.ExecResult{Step: "s"}}
	if err := s.Put(context.Background(), e, root, outs, "", ""); err != nil {
		t.Fatal(err)
	}
	return e
}

func key(c string) string { return "sha256:" + strings.Repeat(c, 64) }

// A restore writes each file into place: a link a step planted where an
// output goes is replaced, never written through.
func TestRestoreReplacesPlantedLinks(t *testing.T) {
	s, _ := Open(t.TempDir())
	_, src := runDir(t, map[string]string{"out/x": "result"})
	e := put(t, s, src, key("1"), "out")

	dst, root := runDir(t, nil)
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("host file"), 0o644)
	os.Mkdir(filepath.Join(dst, "out"), 0o755)
	os.Symlink(victim, filepath.Join(dst, "out", "x"))
	if err := s.Restore(e, root, "", ""); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "host file" {
		t.Errorf("the restore wrote through a planted link: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "out", "x")); string(b) != "result" {
		t.Errorf("out/x = %q", b)
	}
}

// Entries are files a user (or another process of the user) can edit: a
// path that leads out of the run directory or into its records is refused.
func TestRestoreRefusesPathsOutside(t *testing.T) {
	s, _ := Open(t.TempDir())
	_, root := runDir(t, nil)
	for _, p := range []string{"../x", "/etc/x", ".wflow/report.json", "a/../../x", "."} {
		e := &Entry{Outputs: []File{{Path: p, Type: "dir"}}}
		if err := s.Restore(e, root, "", ""); err == nil {
			t.Errorf("%s: restored", p)
		}
	}
}

// An output that is a FIFO is not stored, and storing does not wait on it.
func TestPutRefusesFIFOs(t *testing.T) {
	s, _ := Open(t.TempDir())
	dir, root := runDir(t, nil)
	syscall.Mkfifo(filepath.Join(dir, "out"), 0o644)
	e := &Entry{Version: KeyVersion, Key: key("2"), Step: "s"}
	done := make(chan error, 1)
	go func() { done <- s.Put(context.Background(), e, root, []string{"out"}, "", "") }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a FIFO output was stored")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("storing a FIFO output hangs")
	}
	if _, err := s.Get(key("2")); err == nil {
		t.Error("an entry was written for a step whose outputs could not be stored")
	}
}

// Two runs storing the same step at once both succeed, and the store holds
// one whole entry.
func TestConcurrentPutsOfOneKey(t *testing.T) {
	s, _ := Open(t.TempDir())
	_, root := runDir(t, map[string]string{"out/big": strings.Repeat("x", 1<<20)})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := &Entry{Version: KeyVersion, Key: key("3"), Step: "s", Created: time.Now()}
			errs <- s.Put(context.Background(), e, root, []string{"out"}, "", "")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	e, err := s.Get(key("3"))
	if err != nil || len(e.Outputs) != 2 || e.Size != 1<<20 {
		t.Fatalf("entry %+v, %v", e, err)
	}
	if left, _ := os.ReadDir(filepath.Join(s.Dir, "tmp")); len(left) != 0 {
		t.Errorf("%d files left in tmp/", len(left))
	}
}

// Prune removes old entries and, by size, the oldest first; a blob two
// entries share stays while one of them does.
func TestPrune(t *testing.T) {
	s, _ := Open(t.TempDir())
	_, root := runDir(t, map[string]string{"shared": "same", "a": "aaaa", "b": "bbbbbbbb"})
	old := put(t, s, root, key("4"), "shared", "a")
	old.Created = time.Now().Add(-48 * time.Hour)
	rewrite(t, s, old)
	put(t, s, root, key("5"), "shared", "b")

	removed, freed, err := s.Prune(24*time.Hour, -1)
	if err != nil || removed != 1 || freed != 4 {
		t.Errorf("prune by age: removed %d, freed %d, %v", removed, freed, err)
	}
	e, err := s.Get(key("5"))
	if err != nil {
		t.Fatal(err)
	}
	_, dst := runDir(t, nil)
	if err := s.Restore(e, dst, "", ""); err != nil {
		t.Errorf("the entry left lost its shared blob: %v", err)
	}
	if removed, _, err := s.Prune(0, 0); err != nil || removed != 1 {
		t.Errorf("prune to size 0: removed %d, %v", removed, err)
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Errorf("%d entries left", len(list))
	}
}

func rewrite(t *testing.T, s *Store, e *Entry) {
	t.Helper()
	p, _ := s.entryPath(e.Key)
	b, _ := json.Marshal(e)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkHashInput: what a declared input costs each run, against
// reading the same file (the floor: the bytes must be read).
func BenchmarkHashInput(b *testing.B) {
	dir := b.TempDir()
	data := make([]byte, 64<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	os.WriteFile(filepath.Join(dir, "in"), data, 0o644)
	root, _ := os.OpenRoot(dir)
	defer root.Close()
	b.Run("baseline-read", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			f, _ := os.Open(filepath.Join(dir, "in"))
			io.Copy(io.Discard, f)
			f.Close()
		}
	})
	b.Run("key-input", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := ReadInputs(context.Background(), root, []string{"in"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A restore never follows a link on the way to an output, not even one
// inside the run directory: a step that planted a link to wflow's records
// where an output's folder goes cannot make the restore write there.
func TestRestoreNeverFollowsLinksOnTheWay(t *testing.T) {
	s, _ := Open(t.TempDir())
	_, src := runDir(t, map[string]string{"a/stdout": "FORGED"})
	e := put(t, s, src, key("6"), "a")

	dst, root := runDir(t, map[string]string{".wflow/steps/0001-p/stdout": "legit"})
	os.Symlink(".wflow/steps/0001-p", filepath.Join(dst, "a"))
	err := s.Restore(e, root, "", "")
	if b, _ := os.ReadFile(filepath.Join(dst, ".wflow/steps/0001-p/stdout")); string(b) != "legit" {
		t.Errorf("the restore wrote through a planted link into the records: %q", b)
	}
	if err != nil {
		t.Logf("refused, as it may: %v", err)
	}

	// An entry whose own outputs hold a link, then a path beneath it.
	_, root2 := runDir(t, map[string]string{".wflow/steps/0001-p/stdout": "legit"})
	bad := &Entry{Outputs: []File{{Path: "d", Type: "dir"}, {Path: "d/l", Type: "link", Link: "../.wflow/steps/0001-p"},
		{Path: "d/l/stdout", Type: "file", Digest: e.Outputs[1].Digest}}}
	if err := s.Restore(bad, root2, "", ""); err == nil {
		t.Error("an entry writing beneath its own link was restored")
	}
}

// An output whose path crosses a link is not stored.
func TestPutRefusesOutputsBeneathALink(t *testing.T) {
	s, _ := Open(t.TempDir())
	dir, root := runDir(t, map[string]string{"real/x": "1"})
	os.Symlink("real", filepath.Join(dir, "l"))
	e := &Entry{Version: KeyVersion, Key: key("7"), Step: "s"}
	if err := s.Put(context.Background(), e, root, []string{"l/x"}, "", ""); err == nil {
		t.Error("an output beneath a link was stored")
	}
}

// One budget covers all of a step's inputs: two inputs naming the same
// folder count twice, and the walk stops at the cap.
func TestInputsShareOneBudget(t *testing.T) {
	dir, root := runDir(t, map[string]string{"d/a": "1", "d/b": "2"})
	os.Symlink("d", filepath.Join(dir, "again"))
	left := &budget{entries: 5, bytes: 100}
	ctx := context.Background()
	count := func(File, *os.File) error { return nil }
	if err := walkFiles(ctx, root, "d", left, count); err != nil {
		t.Fatal(err)
	}
	if err := walkFiles(ctx, root, "again", left, count); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("the second walk of the same folder: %v, want the cap", err)
	}
	big := &budget{entries: 100, bytes: 1}
	if err := walkFiles(ctx, root, "d", big, count); err == nil || !strings.Contains(err.Error(), "GiB of files") {
		t.Errorf("bytes: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := ReadInputs(cancelled, root, []string{"d"}); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled run still hashes: %v", err)
	}
}

// A step whose inputs changed while it ran is not stored.
func TestSaveChecksTheInputsAgain(t *testing.T) {
	store, _ := Open(t.TempDir())
	_, root := runDir(t, map[string]string{"out": "x"})
	c := &Cache{Store: store, Mode: On, RunID: "r"}
	var warned string
	c.Warn = func(f string, a ...any) { warned = fmt.Sprintf(f, a...) }
	st := step.Step{Name: "s", Outputs: []string{"out"}}
	before, after := basicParts(), basicParts()
	after.Inputs = []Input{{Path: "in", Files: []File{{Path: "in", Type: "file", Digest: "sha256:changed"}}}}
	l := Lookup{Key: before.Key(), Parts: before}
	c.Save(context.Background(), st, l, step.ExecResult{Step: "s"}, func() (Parts, error) { return after, nil }, root)
	if _, err := store.Get(before.Key()); err == nil || !strings.Contains(warned, "changed while it ran") {
		t.Errorf("stored a step whose inputs changed (warning %q)", warned)
	}
	c.Save(context.Background(), st, l, step.ExecResult{Step: "s"}, func() (Parts, error) { return before, nil }, root)
	if _, err := store.Get(before.Key()); err != nil {
		t.Errorf("an unchanged step was not stored: %v", err)
	}
}
