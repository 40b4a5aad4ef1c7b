module github.com/wflow/wflow/sdk/go

// The Go guest SDK is a module of its own so that a workflow built with
// Go >= 1.24 does not inherit the host's dependencies (Docker, wazero).
go 1.24

require github.com/wflow/wflow/abi v0.0.0

replace github.com/wflow/wflow/abi => ../../abi
