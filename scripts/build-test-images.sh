#!/usr/bin/env bash
# Builds the local images wflow's tests and demo use, without any registry:
#   wflow-test/busybox:latest  FROM scratch + Debian's static busybox, applets linked in /bin.
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

build_busybox
