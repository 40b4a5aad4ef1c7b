package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/wflow/wflow/internal/testenv"
)

// layers are wflow's packages from the bottom up (docs/design.md,
// Architecture): a package may import only packages of earlier layers.
var layers = [][]string{
	{"abi", "internal/clip", "internal/termsafe", "rundir"},
	{"step", "runtime"},
	{"containers"},
	{"containers/docker", "containers/fakeengine", "containers/enginetest", "notebooks", "hostfuncs/guestmem"},
	{"policies"},
	{"hostfuncs", "report"},
	{"cmd/wflow"},
}

// TestLayering: no package imports one above it.
func TestLayering(t *testing.T) {
	const mod = "github.com/wflow/wflow/"
	layer := map[string]int{}
	for i, pkgs := range layers {
		for _, p := range pkgs {
			layer[p] = i
		}
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
			continue // examples, test guests, the benchmark, test helpers
		}
		for _, imp := range fields[1:] {
			to, ok := layer[strings.TrimPrefix(imp, mod)]
			if ok && strings.HasPrefix(imp, mod) && to >= from && imp != fields[0] {
				t.Errorf("%s imports %s, which is not below it (docs/design.md, Architecture)", pkg, strings.TrimPrefix(imp, mod))
			}
		}
	}
}
