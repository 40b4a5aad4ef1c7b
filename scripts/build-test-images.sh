#!/usr/bin/env bash
# Builds the local images wflow's tests and demo use, without any registry:
#   wflow-test/busybox:latest  FROM scratch + Debian's static busybox, applets linked in /bin.
#   wflow-test/python:latest   Debian bookworm (debootstrap) with Python, nbclient, pip and
#                              the TEST-ONLY papermill stand-in of testdata/notebook.
# An image that already exists is kept; pass --force to rebuild.
set -euo pipefail

force=0
[ "${1:-}" = "--force" ] && force=1

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

build_busybox() {
  local ref=wflow-test/busybox:latest
  if [ "$force" = 0 ] && have_image "$ref"; then
    echo "image $ref present"
    return
  fi
  local bb=/bin/busybox
  if ! dpkg -s busybox-static >/dev/null 2>&1 || ! "$bb" --list >/dev/null 2>&1; then
    # Debian's busybox-static installs a static /bin/busybox; a dynamic one would not run FROM scratch.
    echo "need a static busybox: apt-get install -y busybox-static" >&2
    exit 1
  fi
  local root
  root=$(mktemp -d)
  trap 'rm -rf "$root"' RETURN
  mkdir -p "$root/bin" "$root/tmp" "$root/etc"
  chmod 1777 "$root/tmp"
  cp "$bb" "$root/bin/busybox"
  for applet in $("$bb" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  tar -C "$root" -c . | docker import --change 'ENV PATH=/bin' - "$ref" >/dev/null
  echo "image $ref built"
}

# apt_mirror prints the Debian mirror of this machine's apt sources (never
# written into the repository: machines differ).
apt_mirror() {
  local m=""
  if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
    m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

# wflow-test/python-base: Debian bookworm with Python, nbclient, nbformat, ipykernel,
# PyYAML and pip, from debootstrap (about 90 s, once). debootstrap resolves no
# virtual packages, so two providers are named: python3-cffi-backend (for
# python3-zmq) and libboost-regex1.74.0 (for gdb, pulled in by debugpy). wflow-test/python: that plus
# the TEST-ONLY papermill stand-in (testdata/notebook/papermill-standin.py), rebuilt
# whenever the stand-in changes.
build_python() {
  local base=wflow-test/python-base:bookworm ref=wflow-test/python:latest
  if [ "$force" = 1 ] || ! have_image "$base"; then
    command -v debootstrap >/dev/null || { echo "need debootstrap: apt-get install -y debootstrap" >&2; exit 1; }
    local root mirror
    root=$(mktemp -d)
    mirror=$(apt_mirror)
    echo "building $base with debootstrap from $mirror (about 90 s)"
    debootstrap --variant=minbase \
      --include=python3,python3-nbclient,python3-nbformat,python3-ipykernel,python3-yaml,python3-pip,python3-cffi-backend,libboost-regex1.74.0 \
      bookworm "$root" "$mirror" >/tmp/wflow-debootstrap.log 2>&1 || { tail -20 /tmp/wflow-debootstrap.log >&2; rm -rf "$root"; exit 1; }
    # Let pip install into the image's Python (PEP 668 would refuse: it is a test image).
    rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | docker import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'ENV LANG=C.UTF-8' - "$base" >/dev/null
    rm -rf "$root"
    echo "image $base built"
  else
    echo "image $base present"
  fi
  local sum
  sum=$(sha256sum testdata/notebook/papermill-standin.py | cut -c1-16)
  if [ "$force" = 0 ] && [ "$(docker image inspect -f '{{index .Config.Labels "io.wflow.standin"}}' "$ref" 2>/dev/null)" = "$sum" ]; then
    echo "image $ref present"
    return
  fi
  local ctx
  ctx=$(mktemp -d)
  cp testdata/notebook/papermill-standin.py "$ctx/papermill"
  printf 'FROM %s\nCOPY papermill /usr/local/bin/papermill\nLABEL io.wflow.standin=%s\n' "$base" "$sum" >"$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$ref" "$ctx" >/dev/null 2>/tmp/wflow-build.log || { cat /tmp/wflow-build.log >&2; rm -rf "$ctx"; exit 1; }
  rm -rf "$ctx"
  echo "image $ref built"
}

cd "$(dirname "$0")/.."
build_busybox
build_python
