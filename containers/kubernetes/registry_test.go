package kubernetes

import "testing"

// TestCheckRegistry: --notebook-registry takes a host Docker reads as a
// registry (a dot, a port, localhost), never Docker Hub, nor a scheme or
// a tag.
func TestCheckRegistry(t *testing.T) {
	for r, ok := range map[string]bool{
		"registry.example:5000/wflow": true,
		"127.0.0.1:5000":              true,
		"localhost":                   true,
		"localhost:5000/a/b":          true,
		"reg.example/team/wflow":      true,
		"myreg/x":                     false, // Docker Hub's namespace myreg
		"docker.io/library":           false,
		"index.docker.io/me":          false,
		"https://reg.example":         false,
		"reg.example/wflow:tag":       false,
		"reg.example/Upper":           false,
		"":                            false,
	} {
		if err := checkRegistry(r); (err == nil) != ok {
			t.Errorf("checkRegistry(%q) = %v, want ok %v", r, err, ok)
		}
	}
}
