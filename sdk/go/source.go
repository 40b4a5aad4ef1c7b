// Package gosdk holds the Go guest SDK's own source, for `wflow init`.
package gosdk

import "embed"

// Source is the SDK module's source (go.mod, wflow/ and policy/; tests are
// in it too and left out by its reader), which `wflow init` writes into a
// new Go guest project so that it builds with no network.
//
//go:embed go.mod wflow/*.go policy/*.go
var Source embed.FS
