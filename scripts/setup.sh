#!/usr/bin/env bash
# Prepares a fresh Debian machine for wflow: installs what is missing (Docker
# engine, static busybox, clang/lld/wasi-libc for C guests, wabt for .wat
# fixtures, debootstrap for the Python test image, Debian's rustc with its
# WASI std for Rust guests, npm for the AssemblyScript compiler, headless
# Chromium for the HTML report's tests), starts
# dockerd when no daemon answers, and builds the local test images. Safe to
# run again: it only does what is not done yet.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export PATH="$PATH:/usr/local/go/bin"

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v clang >/dev/null 2>&1 || need+=(clang)
command -v wasm-ld >/dev/null 2>&1 || need+=(lld)
[ -f /usr/lib/wasm32-wasi/libc.a ] || need+=(wasi-libc)
ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 || need+=(libclang-rt-dev-wasm32)
command -v wat2wasm >/dev/null 2>&1 || need+=(wabt)
command -v make >/dev/null 2>&1 || need+=(make)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v npm >/dev/null 2>&1 || need+=(npm)
[ -d /usr/lib/rustlib/wasm32-wasi ] || need+=(rustc libstd-rust-dev-wasm32) # Debian's Rust with its WASI std
command -v chromium >/dev/null 2>&1 || need+=(chromium)                        # headless, for the HTML report's tests
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! timeout 10 docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd"
  $SUDO sh -c 'nohup dockerd >/var/log/wflow-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do
    timeout 5 docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! timeout 10 docker info >/dev/null 2>&1; then
    echo "setup: dockerd did not start; its log:" >&2
    $SUDO tail -20 /var/log/wflow-dockerd.log >&2 || true
    exit 1
  fi
fi

scripts/build-test-images.sh

# The AssemblyScript compiler of the AssemblyScript example, pinned by its package-lock.json.
if [ ! -x examples/assemblyscript/node_modules/.bin/asc ]; then
  echo "setup: installing the AssemblyScript compiler (npm ci)"
  (cd examples/assemblyscript && npm ci --silent --no-audit --no-fund)
fi
