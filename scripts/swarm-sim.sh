#!/usr/bin/env bash
# Simulates a 3-node Docker Swarm on this machine, for wflow's multi-node
# tests: a manager and two workers, each its own dockerd (and containerd)
# in its own network namespace, joined by a bridge as three hosts on a LAN
# would be, plus a registry the three nodes pull from.
#
#   scripts/swarm-sim.sh start    start it (if it is not running) and push the test image
#   scripts/swarm-sim.sh stop     stop it and remove everything it made
#   scripts/swarm-sim.sh status   exit 0 when the manager answers with 3 ready nodes
#   scripts/swarm-sim.sh partition n3   cut a node off the others (its link down), as a pulled cable would
#   scripts/swarm-sim.sh heal n3        put it back
#
# What is simulated and what is not (docs/scale-out.md):
#   - each node has its own network stack (addresses 10.231.0.11-13), its
#     own engine, images, containers and swarm agent; nodes talk to each
#     other only over the bridge (swarm's ports 2377, 7946 and VXLAN 4789);
#   - the nodes share this machine's file system, as nodes that mount one
#     NFS export at the same path do: the run directory exists on every node;
#   - the registry (Debian's docker-registry) listens on 10.231.0.1:5231,
#     the bridge's own address; the nodes reach it as an insecure registry;
#   - the nodes share the kernel, CPUs and memory: the simulation checks
#     placement, pulls, networks and cleanup across nodes, not speed.
#
# wflow reaches the manager at unix:///run/wflow-swarm-sim/n1/docker.sock;
# /run/wflow-swarm-sim/cluster.env says so, for tests and users.
set -euo pipefail

state=/run/wflow-swarm-sim
data=/var/lib/wflow-swarm-sim
bridge=wflsim0
subnet=10.231.0
registry=$subnet.1:5231
nodes=(n1 n2 n3)
image=wflow-test/busybox

sock() { echo "unix://$state/$1/docker.sock"; }
on() { local n=$1; shift; docker -H "$(sock "$n")" "$@"; }
addr() { echo "$subnet.1${1#n}"; }
wait_for() { # wait_for SECONDS CMD...: run CMD until it succeeds or time is up
  local until=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $until ] || return 1
    sleep 0.2
  done
}

ready() {
  [ "$(on n1 node ls --format '{{.Status}}' 2>/dev/null | grep -c Ready)" = "${#nodes[@]}" ]
}

need() {
  local pkgs=()
  command -v ip >/dev/null 2>&1 || pkgs+=(iproute2)
  command -v docker-registry >/dev/null 2>&1 || pkgs+=(docker-registry)
  if [ ${#pkgs[@]} -gt 0 ]; then
    echo "swarm-sim: installing ${pkgs[*]}"
    apt-get update -qq
    # The registry package's own service (on :5000) is not wanted: tell
    # the package scripts not to start services (policy-rc.d), for this install.
    local policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
    if [ -n "$policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
  fi
}

# node N: a network namespace with one interface on the bridge, a
# containerd and a dockerd of its own (with the host name wflsim-N). They
# enter only the network
# namespace (nsenter): `ip netns exec` would also remount /sys, hiding the
# cgroup file systems an engine needs.
start_node() {
  local n=$1 ns=wflsim-$1 dir=$state/$1
  mkdir -p "$dir" "$data/$n"
  if ! ip netns list | grep -qw "$ns"; then
    ip netns add "$ns"
    ip link add "wflsim-$n" type veth peer name eth0 netns "$ns"
    ip link set "wflsim-$n" master "$bridge" up
    ip -n "$ns" addr add "$(addr "$n")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
  fi
  cat >"$dir/containerd.toml" <<EOF
version = 2
root = "$data/$n/containerd"
state = "$dir/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$dir/containerd.sock"
[debug]
  address = "$dir/containerd-debug.sock"
EOF
  nsenter --net="/run/netns/$ns" setsid containerd --config "$dir/containerd.toml" \
    >"$dir/containerd.log" 2>&1 </dev/null &
  echo $! >"$dir/containerd.pid"
  wait_for 20 test -S "$dir/containerd.sock" || { echo "swarm-sim: containerd of $n did not start:" >&2; tail -20 "$dir/containerd.log" >&2; exit 1; }
  # Its own host name, which the swarm shows as the node's name.
  unshare --uts sh -c 'hostname "$0" && exec "$@"' "wflsim-$n" \
    nsenter --net="/run/netns/$ns" setsid dockerd \
    --host "$(sock "$n")" \
    --containerd "$dir/containerd.sock" \
    --data-root "$data/$n/docker" \
    --exec-root "$dir/exec" \
    --pidfile "$dir/docker.pid" \
    --cgroup-parent "/wflow-swarm-sim-$n" \
    --insecure-registry "$registry" \
    >"$dir/dockerd.log" 2>&1 </dev/null &
  wait_for 60 on "$n" version || { echo "swarm-sim: dockerd of $n did not start:" >&2; tail -20 "$dir/dockerd.log" >&2; exit 1; }
}

start() {
  if [ "$(id -u)" != 0 ]; then
    echo "swarm-sim: run as root (it makes network namespaces and starts engines)" >&2
    exit 1
  fi
  if ready; then
    echo "swarm-sim: already running (manager $(sock n1))"
    return
  fi
  need
  stop quiet
  mkdir -p "$state" "$data"
  ip link add "$bridge" type bridge
  ip addr add "$subnet.1/24" dev "$bridge"
  ip link set "$bridge" up
  # Docker on this machine may filter bridged traffic (br_netfilter): let the nodes' through.
  if iptables -L DOCKER-USER >/dev/null 2>&1; then
    iptables -I DOCKER-USER -i "$bridge" -o "$bridge" -j ACCEPT
  fi

  mkdir -p "$data/registry"
  cat >"$state/registry.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $data/registry
http:
  addr: $registry
log:
  level: warn
EOF
  setsid docker-registry serve "$state/registry.yml" >"$state/registry.log" 2>&1 </dev/null &
  echo $! >"$state/registry.pid"

  for n in "${nodes[@]}"; do
    echo "swarm-sim: starting node $n at $(addr "$n")"
    start_node "$n"
  done
  on n1 swarm init --advertise-addr "$(addr n1)" >/dev/null
  token=$(on n1 swarm join-token -q worker)
  for n in "${nodes[@]:1}"; do
    on "$n" swarm join --token "$token" "$(addr n1):2377" >/dev/null
  done
  wait_for 60 ready || { echo "swarm-sim: the nodes did not all become ready:" >&2; on n1 node ls >&2; exit 1; }

  # The test image, in the registry: a job that names it by digest may
  # run on any node, which pulls it from there.
  docker save "$image" | on n1 load -q >/dev/null
  on n1 tag "$image" "$registry/$image"
  wait_for 20 on n1 push "$registry/$image" || { echo "swarm-sim: pushing to the registry failed:" >&2; on n1 push "$registry/$image" >&2; tail -5 "$state/registry.log" >&2; exit 1; }

  cat >"$state/cluster.env" <<EOF
# The simulated swarm of scripts/swarm-sim.sh.
WFLOW_SIM_MANAGER=$(sock n1)
WFLOW_SIM_NODES="$(for n in "${nodes[@]}"; do printf '%s ' "$(sock "$n")"; done)"
WFLOW_SIM_REGISTRY=$registry
WFLOW_SIM_IMAGE=$registry/$image
EOF
  echo "swarm-sim: ready: manager $(sock n1), workers on n2 and n3, registry $registry (see $state/cluster.env)"
}

stop() {
  [ "${1:-}" = quiet ] || echo "swarm-sim: stopping"
  rm -f "$state/cluster.env"
  for n in "${nodes[@]}"; do
    local dir=$state/$n
    if [ -f "$dir/docker.pid" ]; then
      kill "$(cat "$dir/docker.pid")" 2>/dev/null || true
      wait_for 20 sh -c "! kill -0 $(cat "$dir/docker.pid") 2>/dev/null" || kill -9 "$(cat "$dir/docker.pid")" 2>/dev/null || true
    fi
    if [ -f "$dir/containerd.pid" ]; then
      # containerd's shims outlive it; their containers are the node's.
      pkill -9 -f "containerd-shim.*-address $dir/containerd.sock" 2>/dev/null || true
      kill "$(cat "$dir/containerd.pid")" 2>/dev/null || true
      wait_for 10 sh -c "! kill -0 $(cat "$dir/containerd.pid") 2>/dev/null" || true
    fi
    # Mounts the node's engine left (its overlay layers, its netns files).
    grep -E " ($data/$n|$dir)/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    ip netns del "wflsim-$n" 2>/dev/null || true
  done
  if [ -f "$state/registry.pid" ]; then kill "$(cat "$state/registry.pid")" 2>/dev/null || true; fi
  if ip link show "$bridge" >/dev/null 2>&1; then
    ip link del "$bridge"
    iptables -D DOCKER-USER -i "$bridge" -o "$bridge" -j ACCEPT 2>/dev/null || true
  fi
  rm -rf "$state" "$data"
}

link() { # link NODE up|down: the node's cable, the bridge's end of its link
  case "${1:-}" in n2|n3) ;; *) echo "swarm-sim: partition or heal n2 or n3 (n1 is the manager wflow talks to)" >&2; exit 2 ;; esac
  ip link set "wflsim-$1" "$2"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) ready ;;
  partition) link "${2:-}" down ;;
  heal) link "${2:-}" up ;;
  *) echo "usage: $0 start|stop|status|partition NODE|heal NODE" >&2; exit 2 ;;
esac
