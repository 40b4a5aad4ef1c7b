package abi

import "embed"

// Source is this module's source (go.mod and abi.go), which `wflow init`
// writes into a new Go guest project so that it builds with no network.
//
//go:embed go.mod abi.go
var Source embed.FS
