// Command fsrace is a hostile test guest: it opens "d/x" over and over,
// while the test swaps the folder d for a FIFO, and sets how many opens
// worked. An open that waits on the FIFO never returns: the test times out.
package main

import (
	"os"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func main() {
	worked := 0
	for i := 0; i < 3000; i++ {
		if os.WriteFile("d/x", []byte("x"), 0o644) == nil {
			worked++
		}
		if f, err := os.Open("d"); err == nil {
			f.Close()
		}
	}
	wflow.SetOutput(map[string]int{"worked": worked})
}
