// Command etcd is etcd's server, built from its module for
// scripts/kube-sim.sh (etcd publishes no main package a tools file could
// import).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
