package engines

import (
	"strings"
	"testing"
)

// TestResolve: --engine wins over WFLOW_ENGINE, which wins over docker; an
// unknown name is an error that says where it came from and lists the
// known ones.
func TestResolve(t *testing.T) {
	for _, c := range []struct {
		flag, env, want, err string
	}{
		{"", "", "docker", ""},
		{"", "swarm", "swarm", ""},
		{"podman", "swarm", "podman", ""},
		{"k8s", "", "", `--engine="k8s": not an engine; use docker, podman, swarm`},
		{"", "Docker", "", `WFLOW_ENGINE="Docker": not an engine`},
	} {
		t.Setenv(EnvVar, c.env)
		got, err := Resolve(c.flag)
		if got != c.want || (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("Resolve(%q) with %s=%q: %q, %v; want %q, %q", c.flag, EnvVar, c.env, got, err, c.want, c.err)
		}
	}
}
