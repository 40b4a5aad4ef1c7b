// Command linkprobe is a test guest: it tries to go through symbolic links
// planted in the run directory (one leading outside, one inside) and does
// ordinary file work, and sets what worked as its output.
package main

import (
	"os"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func ok(err error) bool { return err == nil }

func main() {
	_, readOut := os.ReadFile("planted/secret.txt")
	writeOut := os.WriteFile("planted/dropped.txt", []byte("x"), 0o644)
	_, listOut := os.ReadDir("planted")
	renameOut := os.Rename("planted/secret.txt", "stolen.txt")
	removeOut := os.Remove("planted/secret.txt")
	mkdirOut := os.Mkdir("planted/made", 0o755)
	inner, readIn := os.ReadFile("inner/note.txt")
	own := os.WriteFile("own.txt", []byte("mine"), 0o644)
	mk := os.MkdirAll("made/deeper", 0o755)
	mv := os.Rename("own.txt", "made/deeper/own.txt")
	back, readBack := os.ReadFile("made/deeper/own.txt")
	wflow.SetOutput(map[string]any{
		"read_outside": ok(readOut), "write_outside": ok(writeOut), "list_outside": ok(listOut),
		"rename_outside": ok(renameOut), "remove_outside": ok(removeOut), "mkdir_outside": ok(mkdirOut),
		"read_inside_link": ok(readIn) && string(inner) == "inside",
		"own_files":        ok(own) && ok(mk) && ok(mv) && ok(readBack) && string(back) == "mine",
	})
}
