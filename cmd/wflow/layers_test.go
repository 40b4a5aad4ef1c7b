package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/wflow/wflow/internal/testenv"
)

// layers are wflow's packages from the bottom up, as the Architecture table
// of docs/design.md lists them: a package may import only packages of
// earlier layers, none of its own layer or above.
var layers = [][]string{
	{"abi"},
	{"internal/clip", "internal/termsafe", "internal/scaffold"},
	{"secrets"},
	{"rundir"},
	{"step"},
	{"journal"},
	{"trace"},
	{"stepcache"},
	{"runtime"},
	{"containers"},
	{"containers/docker", "containers/fakeengine", "containers/enginetest"},
	{"containers/podman", "containers/swarm", "containers/kubernetes"},
	{"notebooks"},
	{"containers/engines"},
	{"internal/guestmem"},
	{"policies"},
	{"hostfuncs"},
	{"replay"},
	{"report"},
	{"history"},
	{"cmd/wflow"},
}

// unlayered are the packages outside the layers: programs and helpers
// that no layered package may import.
var unlayered = []string{"examples/", "bench", "testdata/", "internal/testenv", "sdk/"}

// TestLayering: no package imports one of its own layer or above, and
// every package of the module is in a layer or explicitly outside them.
func TestLayering(t *testing.T) {
	const mod = "github.com/wflow/wflow/"
	layer := map[string]int{}
	for i, pkgs := range layers {
		for _, p := range pkgs {
			layer[p] = i
		}
	}
	outside := func(pkg string) bool {
		for _, u := range unlayered {
			if strings.HasPrefix(pkg, u) {
				return true
			}
		}
		return false
	}
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...")
	cmd.Dir = testenv.Root()
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		from, ok := layer[pkg]
		if !ok {
			if !outside(pkg) {
				t.Errorf("package %s is in no layer: add it to layers here and to docs/design.md's Architecture table", pkg)
			}
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			dep := strings.TrimPrefix(imp, mod)
			to, ok := layer[dep]
			switch {
			case !ok && outside(dep) && !strings.HasPrefix(dep, "sdk/"):
				t.Errorf("%s imports %s, which is outside the layers", pkg, dep)
			case ok && to >= from:
				t.Errorf("%s imports %s, which is not below it (docs/design.md, Architecture)", pkg, dep)
			}
		}
	}
}
