// Command replayable is a test guest of wflow replay: everything it decides
// depends on what crosses its imports. It reads the wall clock and random
// bytes (crypto/rand and math/rand, both from WASI's random_get) and puts
// them in its steps' commands, runs two steps at once and reacts to the
// one that lands first, logs, and sets an output. Built with
// -ldflags "-X main.variant=edited", its third step runs another command;
// with -p fail=third (and not edited), the third step fails. With -p
// fixed=yes its steps do not depend on the clock or random bytes (so a
// resume can answer them).
package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"time"

	"github.com/wflow/wflow/sdk/go/wflow"
)

var variant = ""

func main() {
	var b [8]byte
	rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	pick := mrand.IntN(1_000_000)
	start := time.Now()
	fail, fixed := wflow.Param("fail"), wflow.Param("fixed") == "yes"
	if fixed {
		token, pick = "token", 1
	}
	wflow.Log("token %s, pick %d, at %d", token, pick, start.UnixNano())

	slow, err := wflow.Submit(wflow.Step{Name: "slow", Image: "wflow-test/busybox",
		Commands: []wflow.Command{wflow.Shell(fmt.Sprintf("sleep 0.3; echo %s", token))}})
	if err != nil {
		os.Exit(1)
	}
	fast, err := wflow.Submit(wflow.Step{Name: "fast", Image: "wflow-test/busybox",
		Commands: []wflow.Command{wflow.Shell(fmt.Sprintf("echo %d", pick))}})
	if err != nil {
		os.Exit(1)
	}
	first, err := wflow.Wait(slow, fast)
	if err != nil {
		os.Exit(1)
	}
	rest := slow
	if first.Step == "slow" {
		rest = fast
	}
	second, err := wflow.Wait(rest)
	if err != nil {
		os.Exit(1)
	}
	third := fmt.Sprintf("echo after %s then %s, %d ms", first.Step, second.Step, time.Since(start).Milliseconds())
	switch {
	case variant == "edited":
		third = "echo edited"
	case fail == "third":
		third = "exit 3"
	case fixed:
		third = "echo third"
	}
	last, err := wflow.Run(wflow.Step{Name: "third", Image: "wflow-test/busybox", Commands: []wflow.Command{wflow.Shell(third)}})
	if err != nil {
		os.Exit(1)
	}
	wflow.SetOutput(map[string]any{"token": token, "pick": pick, "first": first.Step, "third": last.Stdout})
}
