// Package csdk holds the C guest SDK's headers, for `wflow init`.
package csdk

import "embed"

// Source holds wflow.h and wflow_policy.h, which `wflow init --lang c`
// writes into a new C guest project.
//
//go:embed wflow.h wflow_policy.h
var Source embed.FS
