package notebooks

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wflow/wflow/step"
)

func TestParseStep(t *testing.T) {
	s, err := ParseStep([]byte(`{"name":"nb","notebook":"work/a.ipynb","parameters":{"n":1,"x":1.0,"s":"1"},
		"requirements":["pandas==2.1","./pkgs/mine"],"timeout":"5m","memory":"1g","env":{"K":"V"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Output != "work/a.out.ipynb" {
		t.Errorf("default output %q", s.Output)
	}
	if string(s.Parameters) != `{"n":1,"x":1.0,"s":"1"}` {
		t.Errorf("parameters %s: want the JSON as given, so 1.0 stays a float", s.Parameters)
	}
	if s.Timeout != step.Duration(5*time.Minute) || s.Memory != 1<<30 || s.Env["K"] != "V" || len(s.Requirements) != 2 {
		t.Errorf("step %+v", s)
	}
	for _, c := range []struct{ spec, msg string }{
		{`{"name":"nb"}`, `"notebook" is required`},
		{`{"name":"nb","notebook":"a.txt"}`, ".ipynb"},
		{`{"name":"nb","notebook":"../a.ipynb"}`, "outside the run directory"},
		{`{"name":"nb","notebook":"/etc/a.ipynb"}`, "in the run directory"},
		{`{"name":"nb","notebook":"a.ipynb","output":"a.ipynb"}`, "must differ"},
		{`{"name":"nb","notebook":"a.ipynb","parameters":[1]}`, "object"},
		{`{"name":"nb","notebook":"a.ipynb","requirements":"pandas"}`, "list"},
		{`{"name":"nb","notebook":"a.ipynb","requirements":["a\nb"]}`, "requirement 1"},
		{`{"name":"nb","notebook":"a.ipynb","requirements":["./../../etc"]}`, "outside the run directory"},
		{`{"name":"nb","notebook":"a.ipynb","memory":"1k"}`, "at least 6m"},
		{`{"name":"nb","notebook":"a.ipynb","kernel":"x y"}`, `not a kernel name`},
		{`{"name":"nb","notebook":"a.ipynb","kernels":"x"}`, `unknown field "kernels"`},
		{`{"name":"nb","notebook":"a.ipynb","parameters":{"s":"\ud83c"}}`, `lone UTF-16 surrogate`},
		{`{"name":"nb","notebook":"a.ipynb","parameters":{"s":{"a":"\udf89x"}}}`, `parameter s.a: holds a lone`},
		{`{"name":"nb","notebook":"a.ipynb","parameters":{"a":1,"a":2}}`, `key "a" given twice`},
		{`{"name":"../nb","notebook":"a.ipynb"}`, "name"},
	} {
		if _, err := ParseStep([]byte(c.spec)); !errors.Is(err, step.ErrInvalidStep) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want an invalid step saying %q", c.spec, err, c.msg)
		}
	}
	if _, err := ParseStep([]byte(`{"name":`)); !errors.Is(err, step.ErrInvalidJSON) {
		t.Errorf("truncated JSON: %v", err)
	}
}

func TestContextHash(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "pkg", "mod"), 0o755)
	os.WriteFile(filepath.Join(dir, "pkg", "mod", "__init__.py"), []byte("x = 1\n"), 0o644)
	tmpl, err := Template(DefaultTemplate)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := Template(DefaultTemplate + "RUN true\n")
	tagOf := func(tm any, base, baseID string, reqs ...string) string {
		t.Helper()
		bc, err := makeContext(tmpl, base, baseID, reqs, dir)
		if tm != nil {
			bc, err = makeContext(other, base, baseID, reqs, dir)
		}
		if err != nil {
			t.Fatal(err)
		}
		return bc.tag
	}
	tag := func(tm any, base string, reqs ...string) string { return tagOf(tm, base, "sha256:1", reqs...) }
	a := tag(nil, "python:3.12-slim", "pandas", "./pkg")
	if !strings.HasPrefix(a, "wflow-notebook:") || len(a) != len("wflow-notebook:")+16 {
		t.Errorf("tag %q", a)
	}
	if b := tag(nil, "python:3.12-slim", "pandas", "./pkg"); b != a {
		t.Error("the same inputs gave another tag")
	}
	for name, b := range map[string]string{
		"base":          tag(nil, "python:3.11-slim", "pandas", "./pkg"),
		"template":      tag(true, "python:3.12-slim", "pandas", "./pkg"),
		"requirements":  tag(nil, "python:3.12-slim", "pandas==2", "./pkg"),
		"base image ID": tagOf(nil, "python:3.12-slim", "sha256:2", "pandas", "./pkg"),
	} {
		if b == a {
			t.Errorf("changing the %s kept the tag", name)
		}
	}
	os.WriteFile(filepath.Join(dir, "pkg", "mod", "__init__.py"), []byte("x = 2\n"), 0o644)
	if b := tag(nil, "python:3.12-slim", "pandas", "./pkg"); b == a {
		t.Error("changing the local package's content kept the tag")
	}
}

func TestLocalPackagesStayInTheRunDirectory(t *testing.T) {
	dir := t.TempDir()
	os.Symlink("/etc", filepath.Join(dir, "escape"))
	tmpl, _ := Template(DefaultTemplate)
	for _, req := range []string{"./escape", "./escape/passwd"} {
		if _, err := makeContext(tmpl, "b", "", []string{req}, dir); err == nil || !strings.Contains(err.Error(), "outside the run directory") {
			t.Errorf("%s: %v", req, err)
		}
	}
	if _, err := Template("FROM {{.Nope}}"); err == nil {
		t.Error("a template with an unknown field was accepted")
	}
}

func TestParseBuild(t *testing.T) {
	b, err := ParseBuild([]byte(`{"name":"img","base":"python:3.12-slim","requirements":["pandas"]}`))
	if err != nil || b.Name != "img" || b.Base != "python:3.12-slim" || len(b.Requirements) != 1 {
		t.Fatalf("%+v, %v", b, err)
	}
	for _, c := range []struct{ spec, msg string }{
		{`{"name":"img","name":"other"}`, "given twice"},
		{`{"name":"img","kernel":"x"}`, `unknown field "kernel"`},
		{`["img"]`, "must be a JSON object"},
		{`{"name":"img","base":"a b"}`, "not an image reference"},
	} {
		if _, err := ParseBuild([]byte(c.spec)); !errors.Is(err, step.ErrInvalidStep) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %q", c.spec, err, c.msg)
		}
	}
}

// Requirement lines land in requirements.txt as they are, where pip obeys
// options: only package specifiers (and --hash) and ./paths pass.
func TestRequirementsArePackageSpecifiers(t *testing.T) {
	good := []string{"pandas", "numpy>=1.26,<2", "rich[jupyter]", "rich [jupyter] ==13.0", "requests; python_version > '3.8'",
		"pkg @ https://example.org/pkg-1.0.whl", "six==1.16.0 --hash=sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254",
		"zope.interface", "a", "./pkg", "/wflow/wheels/x-1.0-py3-none-any.whl"}
	bad := []string{"-r /etc/passwd", "--extra-index-url https://evil.example", "-e /", "--trusted-host evil", "-c constraints.txt",
		"pandas --index-url https://evil.example", "/etc/passwd", "https://evil.example/x.whl", "git+https://evil.example/x",
		"pkg \\", "=1.0", ".hidden", "pandas -i https://evil.example",
		"pip==23\x1c-r /etc/passwd", "pip==23\v-r /etc/passwd", "pip==23\f-e /", "pip==23\x1d--index-url x",
		"pip==23\x1e-r x", "pip==23\u0085-r x", "pip==23\u2028-r x", "pip==23\u2029-r x", "pip==23\t-r x",
		"foo==1.0 '--install-option=--prefix=/evil'", `foo==1.0 "--global-option=x"`, "foo==1.0 ''--global-option=x",
		"./pkg --global-option=--evil", "./pkg '--x'", "./pkg#frag"}
	for _, r := range good {
		spec := fmt.Sprintf(`{"name":"n","notebook":"a.ipynb","requirements":[%q]}`, r)
		if _, err := ParseStep([]byte(spec)); err != nil {
			t.Errorf("%q refused: %v", r, err)
		}
	}
	for _, r := range bad {
		spec := fmt.Sprintf(`{"name":"n","notebook":"a.ipynb","requirements":[%q]}`, r)
		if _, err := ParseStep([]byte(spec)); err == nil {
			t.Errorf("%q accepted", r)
		}
	}
}

// A step may swap a folder of a local package for a link to a host folder
// while wflow walks the package (renameat2's exchange makes the swap
// atomic, so the race is won often): no host file may reach the build
// context, however the race falls.
func TestLocalPackageWalkCannotBeRaced(t *testing.T) {
	base := t.TempDir()
	run, outside := filepath.Join(base, "run"), filepath.Join(base, "outside")
	sub, alt := filepath.Join(run, "pkg", "sub"), filepath.Join(run, "alt")
	os.MkdirAll(sub, 0o755)
	os.Mkdir(outside, 0o755)
	for i := 0; i < 50; i++ {
		name := fmt.Sprintf("f%02d.py", i)
		os.WriteFile(filepath.Join(sub, name), []byte("inside"), 0o644)
		os.WriteFile(filepath.Join(outside, name), []byte("HOST-SECRET"), 0o644)
	}
	os.Symlink(outside, alt)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				unix.Renameat2(unix.AT_FDCWD, sub, unix.AT_FDCWD, alt, unix.RENAME_EXCHANGE)
			}
		}
	}()
	defer func() { close(stop); <-done }()
	tmpl, _ := Template(DefaultTemplate)
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if bc, err := makeContext(tmpl, "b", "", []string{"./pkg"}, run); err == nil && bytes.Contains(bc.tar, []byte("HOST-SECRET")) {
			t.Fatalf("try %d: a host file reached the build context", i)
		}
	}
}

// A bad limit in a notebook spec names the notebook step, not a stand-in.
func TestNotebookLimitErrorsNameTheStep(t *testing.T) {
	_, err := ParseStep([]byte(`{"name":"analysis","notebook":"a.ipynb","memory":"1k"}`))
	if err == nil || !strings.Contains(err.Error(), "analysis") || strings.Contains(err.Error(), "step x") {
		t.Errorf("error %v: want one naming step analysis", err)
	}
}

// TestDefaultTemplatePinsPapermill: the built-in template installs the
// papermill release wflow mirrors, its client and kernel pinned, in the
// same pip run as the step's requirements (one resolver run, so a
// requirement cannot silently move their dependencies).
func TestDefaultTemplatePinsPapermill(t *testing.T) {
	var installs []string
	for _, line := range strings.Split(DefaultTemplate, "\n") {
		if strings.Contains(line, "pip install") {
			installs = append(installs, line)
		}
	}
	if len(installs) != 1 {
		t.Fatalf("%d pip installs in the template, want 1:\n%s", len(installs), DefaultTemplate)
	}
	for _, want := range []string{"papermill==" + PapermillVersion, "nbclient==", "ipykernel==", "-r /wflow-build/requirements.txt"} {
		if !strings.Contains(installs[0], want) {
			t.Errorf("the pip install does not say %q: %s", want, installs[0])
		}
	}
}
