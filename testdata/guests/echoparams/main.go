// Command echoparams is a test guest: it sets its parameters as its output.
package main

import (
	"encoding/json"
	"os"

	"github.com/wflow/wflow/sdk/go/wflow"
)

func main() {
	var params map[string]json.RawMessage
	if err := wflow.Params(&params); err != nil {
		os.Exit(1)
	}
	if err := wflow.SetOutput(params); err != nil {
		os.Exit(1)
	}
}
