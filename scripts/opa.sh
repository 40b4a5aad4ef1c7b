#!/usr/bin/env bash
# Prints the path of the opa CLI that the Rego policy tests compile with,
# building it from the Go module proxy the first time (about a minute, 2.5 on
# a new machine) into ~/.cache/wflow-opa/<version>/, where later runs find it.
set -euo pipefail
version=v1.22.3
dir="${XDG_CACHE_HOME:-$HOME/.cache}/wflow-opa/$version"
if [ ! -x "$dir/opa" ]; then
  mkdir -p "$dir"
  echo "opa: building github.com/open-policy-agent/opa@$version into $dir" >&2
  GOBIN="$dir" GOFLAGS=-mod=mod go install "github.com/open-policy-agent/opa@$version" >&2
fi
echo "$dir/opa"
