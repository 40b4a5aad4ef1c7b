#!/usr/bin/env bash
# Starts or stops the Podman API service wflow's podman engine talks to
# (the Docker-compatible API of `podman system service`), at Podman's
# default root socket, and loads the local test images into Podman's store.
#
#   scripts/podman-service.sh start   start it (if nothing answers there) and load the images
#   scripts/podman-service.sh stop    stop it, if this script started it
#   scripts/podman-service.sh status  exit 0 when a service answers at the socket
#
# The service gets a containers.conf for machines like ours (CI, a
# container without systemd, cgroup v1), written under /run/wflow-podman:
#   - runtime runc: crun refuses cgroup v1 in hybrid mode here;
#   - cgroup_manager cgroupfs: there is no systemd to ask;
#   - default ulimits no higher than this process's hard limits: Podman
#     raises them for root, which fails without CAP_SYS_RESOURCE (nproc is
#     also held under the kernel's pid_max, above which it means nothing).
# On an ordinary host with systemd none of this is needed: `systemctl
# start podman.socket` gives the same socket.
set -euo pipefail
cd "$(dirname "$0")/.."

state=/run/wflow-podman
socket=/run/podman/podman.sock
images=(wflow-test/busybox wflow-test/python)

answers() { timeout 10 podman --url "unix://$socket" version >/dev/null 2>&1; }

start() {
  if [ "$(id -u)" != 0 ]; then
    echo "podman-service: run as root (rootless Podman: start \`podman system service\` yourself and set CONTAINER_HOST)" >&2
    exit 1
  fi
  if ! command -v podman >/dev/null 2>&1; then
    echo "podman-service: installing podman"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman >/dev/null
  fi
  mkdir -p "$state" "$(dirname "$socket")"
  if answers; then
    echo "podman-service: a service already answers at $socket"
  else
    nofile=$(ulimit -Hn)
    nproc=$(ulimit -Hu)
    pidmax=$(cat /proc/sys/kernel/pid_max)
    if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pidmax" ]; then nproc=$pidmax; fi
    if [ "$nofile" = unlimited ]; then nofile=1048576; fi
    cat >"$state/containers.conf" <<EOF
# Written by wflow's scripts/podman-service.sh for this machine.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
    echo "podman-service: starting podman system service at $socket"
    CONTAINERS_CONF="$state/containers.conf" setsid podman system service --time=0 "unix://$socket" \
      >"$state/service.log" 2>&1 </dev/null &
    echo $! >"$state/service.pid"
    for _ in $(seq 1 50); do answers && break; sleep 0.2; done
    if ! answers; then
      echo "podman-service: the service did not answer; its log:" >&2
      tail -20 "$state/service.log" >&2 || true
      exit 1
    fi
  fi
  # The test images, built in Docker by scripts/build-test-images.sh, copied
  # into Podman's store when it lacks them (Podman keeps their ids).
  for img in "${images[@]}"; do
    id=$(docker image inspect --format '{{.Id}}' "$img" 2>/dev/null) || continue
    have=$(podman image inspect --format '{{.Id}}' "localhost/$img" 2>/dev/null || true)
    if [ "sha256:$have" != "$id" ]; then
      echo "podman-service: loading $img into Podman"
      docker save "$img" | podman load -q >/dev/null
    fi
  done
}

stop() {
  [ -f "$state/service.pid" ] || return 0
  pid=$(cat "$state/service.pid")
  if kill "$pid" 2>/dev/null; then
    echo "podman-service: stopping the service this script started (pid $pid)"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -f "$state/service.pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) command -v podman >/dev/null 2>&1 && answers ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
