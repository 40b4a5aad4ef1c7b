// Command secrets is a test guest of --secret: its steps print the secrets
// they are given (whole, in pieces across writes, on stderr, once per
// attempt of a retried step, in a failing step), a step names a secret the
// run does not have, and the module logs and outputs what it got back. A
// run of it must leave the values nowhere wflow writes.
package main

import (
	"os"
	"strings"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func main() {
	if wflow.Param("case") == "policy" {
		policyCase()
		return
	}
	busybox := func(name string, script ...string) wflow.Step {
		s := wflow.Step{Name: name, Image: "wflow-test/busybox", Secrets: map[string]string{"TOKEN": "token", "KEY": "key"}}
		for _, c := range script {
			// $$: wflow substitutes --var names; the shell expands the rest.
			s.Commands = append(s.Commands, wflow.Shell(strings.ReplaceAll(c, "$", "$$")))
		}
		return s
	}
	out := map[string]any{}
	printer, err := wflow.Run(busybox("printer",
		`echo "token=$TOKEN"`,
		// One byte at a time, across many writes of the container's stream.
		`printf '%s\n' "$TOKEN" | while IFS= read -r l; do i=0; while [ $i -lt ${#l} ]; do printf '%s' "${l:$i:1}"; i=$((i+1)); sleep 0.01; done; done; echo`,
		`echo "key: $KEY" >&2`,
		`printf '%s' "$TOKEN" >&2`, // no newline at the end of the stream
	))
	if err != nil {
		wflow.Warn("%v", err)
		os.Exit(1)
	}
	out["printer"] = map[string]any{"stdout": printer.Stdout, "stderr": printer.Stderr, "ok": printer.OK()}
	wflow.Log("the printer printed: %s", printer.Stdout)

	failing := busybox("failing", `echo "$TOKEN"; exit 3`)
	failing.Retry = &wflow.Retry{Retries: 1, Initial: wflow.NoDelay}
	res, err := wflow.Run(failing)
	if err != nil {
		wflow.Warn("%v", err)
		os.Exit(1)
	}
	out["failing"] = map[string]any{"stdout": res.Stdout, "code": res.ReturnCode, "attempts": len(res.Attempts)}

	// A secret the run does not have is refused at submit.
	_, err = wflow.Submit(wflow.Step{Name: "unknown", Image: "wflow-test/busybox", Commands: []wflow.Command{wflow.Shell("true")},
		Secrets: map[string]string{"X": "missing"}})
	out["unknown"] = err.Error()

	// What a step wrote into the run directory, read by the module and
	// printed: masked on the console and in the report's output.
	if _, err := wflow.Run(busybox("leak", `printf '%s' "$TOKEN" > leaked.txt`)); err != nil {
		wflow.Warn("%v", err)
		os.Exit(1)
	}
	leaked, _ := os.ReadFile("leaked.txt")
	os.Remove("leaked.txt")
	os.Stdout.Write(append([]byte("read back: "), append(leaked, '\n')...))
	wflow.Log("read back: %s", leaked)
	out["leaked"] = string(leaked)
	if err := wflow.SetOutput(out); err != nil {
		wflow.Warn("%v", err)
		os.Exit(1)
	}
}

// policyCase submits steps that name the secrets of the example policy
// secret-images to allowed and refused images, and outputs how each ended.
func policyCase() {
	kinds := map[string]string{}
	for _, c := range []struct{ name, image, secret string }{
		{"deploy-busybox", "wflow-test/busybox", "deploy-token"},
		{"deploy-python", "wflow-test/python", "deploy-token"},
		{"db-python", "wflow-test/python", "db-password"},
	} {
		res, err := wflow.Run(wflow.Step{Name: c.name, Image: c.image, Commands: []wflow.Command{wflow.Argv("true")},
			Secrets: map[string]string{"S": c.secret}})
		if err != nil {
			wflow.Warn("%v", err)
			os.Exit(1)
		}
		kinds[c.name] = res.ErrorKind
		if res.ErrorKind == "" {
			kinds[c.name] = "ran"
		}
	}
	wflow.SetOutput(kinds)
}
