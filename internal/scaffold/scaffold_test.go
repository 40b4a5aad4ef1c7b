package scaffold

import (
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
