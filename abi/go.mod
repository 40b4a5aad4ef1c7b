module github.com/wflow/wflow/abi

// The ABI constants are a module of their own, standard library only, so
// that guests built with older Go (>= 1.24) can depend on them.
go 1.24
