// Command fsprobe is a test guest: it reports what of the host it can see
// (working directory, environment, a host file, the run directory) as its
// output.
package main

import (
	"os"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func main() {
	cwd, _ := os.Getwd()
	input, _ := os.ReadFile("input.txt")
	_, err := os.ReadFile("/etc/passwd")
	werr := os.WriteFile("written.txt", []byte("from the module"), 0o644)
	if err := wflow.SetOutput(map[string]any{
		"cwd":        cwd,
		"env":        os.Environ(),
		"etc_passwd": err == nil,
		"input":      string(input),
		"wrote":      werr == nil,
	}); err != nil {
		os.Exit(1)
	}
}
