package scaffold

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	for dir, want := range map[string]string{
		"/tmp/My Flow": "my-flow", "hello_go": "hello_go", "./2fast/": "workflow-2fast", "/": "workflow", "x.y": "x-y", "Ünï": "n",
	} {
		if got := Name(dir); got != want {
			t.Errorf("Name(%q) = %q, want %q", dir, got, want)
		}
	}
}

func TestFilesCarryWhatTheyNeed(t *testing.T) {
	for lang, want := range map[string][]string{
		"go":             {"go.mod", "main.go", "README.md", "third_party/wflow/abi/abi.go", "third_party/wflow/sdk-go/wflow/wflow.go", "third_party/wflow/sdk-go/go.mod"},
		"c":              {"main.c", "wflow.h", "README.md"},
		"rust":           {"Cargo.toml", "src/main.rs", "README.md"},
		"assemblyscript": {"package.json", "main.ts", "README.md"},
	} {
		files, err := Files("demo", lang)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range want {
			if _, ok := files[name]; !ok {
				t.Errorf("%s: no %s", lang, name)
			}
		}
		for name, b := range files {
			if strings.HasSuffix(name, "_test.go") || strings.HasSuffix(name, ".tmpl") || strings.Contains(string(b), placeholder) {
				t.Errorf("%s: %s left as it was in the template", lang, name)
			}
		}
	}
}

// TestWriteFollowsNoLink: a link planted in the project folder is not
// written through.
func TestWriteFollowsNoLink(t *testing.T) {
	outside := t.TempDir()
	victim := filepath.Join(outside, "precious.txt")
	os.WriteFile(victim, []byte("keep"), 0o644)
	dir := t.TempDir()
	os.Symlink(victim, filepath.Join(dir, "main.c"))
	// Write refuses a folder that is not empty; plant after its check by
	// writing through the same function the race would reach.
	root, _ := os.OpenRoot(dir)
	defer root.Close()
	if err := writeNew(root, "main.c", []byte("x")); err == nil {
		t.Error("wrote through a planted link")
	}
	os.Symlink(outside, filepath.Join(dir, "third_party"))
	if err := writeNew(root, "third_party/wflow/abi/abi.go", []byte("x")); err == nil {
		t.Error("wrote through a planted folder link")
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("victim now %q", b)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("%d entries outside", len(entries))
	}
}
