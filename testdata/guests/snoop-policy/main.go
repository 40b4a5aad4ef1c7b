// Command snoop-policy is a test policy: it tries to see the host (a file,
// the root folder, the environment, the clock) and refuses the step with a
// reason that reports what it saw, so a test can check it saw nothing.
package main

import (
	"encoding/json"
	"os"
	"time"

	"github.com/wflow/wflow/sdk/go/policy"
)

func main() {
	_, fileErr := os.ReadFile("/etc/passwd")
	entries, _ := os.ReadDir("/")
	saw := map[string]any{
		"file":    fileErr == nil,
		"entries": len(entries),
		"env":     os.Environ(),
		"year":    time.Now().Year(),
	}
	b, _ := json.Marshal(saw)
	policy.Deny(string(b))
}
