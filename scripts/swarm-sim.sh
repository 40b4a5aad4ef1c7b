#!/usr/bin/env bash
# Simulates a 3-node Docker Swarm on this machine, for wflow's multi-node
# tests: a manager and two workers, each its own dockerd (and containerd)
# in its own network namespace, joined by a bridge as three hosts on a LAN
# would be, plus a registry the three nodes pull from. Run it as root.
#
#   scripts/swarm-sim.sh start          start it (unless it runs) and push the test image
#   scripts/swarm-sim.sh stop           stop it and remove everything it made
#   scripts/swarm-sim.sh status         exit 0 when it runs: 3 ready nodes, the registry, cluster.env
#   scripts/swarm-sim.sh partition n3   cut a worker off the others (its link down), as a pulled cable would
#   scripts/swarm-sim.sh heal n3        put it back
#
# What is simulated and what is not (docs/scale-out.md):
#   - each node has its own network stack (addresses 10.231.0.11-13), its
#     own engine, images, containers and swarm agent; nodes talk to each
#     other only over the bridge (swarm's ports 2377, 7946 and VXLAN 4789);
#   - the nodes share this machine's file system, as nodes that mount one
#     NFS export at the same path do: the run directory exists on every node;
#   - the registry (Debian's docker-registry) listens on 10.231.0.1:5231,
#     the bridge's own address, read-only once the test image is in it; the
#     nodes reach it as an insecure registry;
#   - the nodes share the kernel, CPUs and memory: the simulation checks
#     placement, pulls, networks and cleanup across nodes, not speed.
#
# wflow reaches the manager at unix:///run/wflow-swarm-sim/n1/docker.sock;
# /run/wflow-swarm-sim/cluster.env, written last, says so for tests and users.
set -euo pipefail
. "$(dirname "$0")/lib/procs.sh"

state=/run/wflow-swarm-sim
data=/var/lib/wflow-swarm-sim
bridge=wflsim0
subnet=10.231.0
registry=$subnet.1:5231
nodes=(n1 n2 n3)
image=wflow-test/busybox

sock() { echo "unix://$state/$1/docker.sock"; }
on() { local n=$1; shift; timeout 30 docker -H "$(sock "$n")" "$@"; }
addr() { echo "$subnet.1${1#n}"; }

# ready: a whole simulation answers (a start cut short is not one).
ready() {
  [ -f "$state/cluster.env" ] &&
    [ "$(on n1 node ls --format '{{.Status}}' 2>/dev/null | grep -c Ready)" = "${#nodes[@]}" ] &&
    registry_answers
}
registry_answers() { timeout 5 bash -c "exec 3<>/dev/tcp/${registry%:*}/${registry#*:}" 2>/dev/null; }

need() {
  local pkgs=()
  command -v ip >/dev/null 2>&1 || pkgs+=(iproute2)
  command -v docker-registry >/dev/null 2>&1 || pkgs+=(docker-registry)
  [ ${#pkgs[@]} -gt 0 ] || return 0
  echo "swarm-sim: installing ${pkgs[*]}"
  apt-get update -qq
  # The registry package's own service (on :5000) is not wanted: the
  # package's scripts are told not to start services (policy-rc.d) for
  # this install only, and the service is disabled after.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  if [ -d /run/systemd/system ]; then
    systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
  fi
  rm -f /usr/sbin/policy-rc.d
  trap - EXIT
}

# registry [readonly]: (re)start the registry, writable or read-only.
start_registry() {
  stop_pid "$state/registry.pid" docker-registry
  mkdir -p "$data/registry"
  cat >"$state/registry.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $data/registry
  maintenance:
    readonly:
      enabled: ${1:-false}
http:
  addr: $registry
log:
  level: warn
EOF
  setsid docker-registry serve "$state/registry.yml" >>"$state/registry.log" 2>&1 </dev/null 9>&- &
  echo $! >"$state/registry.pid"
  wait_for 20 registry_answers || { echo "swarm-sim: the registry did not start:" >&2; tail -5 "$state/registry.log" >&2; exit 1; }
}

# start_node N: a network namespace with one interface on the bridge, a
# containerd and a dockerd of its own (with the host name wflsim-N). They
# enter only the network namespace (nsenter): `ip netns exec` would also
# remount /sys, hiding the cgroup file systems an engine needs. The
# engine ignores the host's /etc/docker/daemon.json and uses the cgroupfs
# driver, which takes a plain cgroup parent on every host.
start_node() {
  local n=$1 ns=wflsim-$1 dir=$state/$1
  mkdir -p "$dir" "$data/$n"
  ip netns add "$ns"
  ip link add "wflsim-$n" type veth peer name eth0 netns "$ns"
  ip link set "wflsim-$n" master "$bridge" up
  ip -n "$ns" addr add "$(addr "$n")/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
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
    >"$dir/containerd.log" 2>&1 </dev/null 9>&- &
  echo $! >"$dir/containerd.pid"
  wait_for 20 test -S "$dir/containerd.sock" || { echo "swarm-sim: containerd of $n did not start:" >&2; tail -20 "$dir/containerd.log" >&2; exit 1; }
  echo '{}' >"$dir/daemon.json"
  # Its own host name, which the swarm shows as the node's name.
  unshare --uts sh -c 'hostname "$0" && exec "$@"' "wflsim-$n" \
    nsenter --net="/run/netns/$ns" setsid dockerd \
    --config-file "$dir/daemon.json" \
    --host "$(sock "$n")" \
    --containerd "$dir/containerd.sock" \
    --data-root "$data/$n/docker" \
    --exec-root "$dir/exec" \
    --pidfile "$dir/docker.pid" \
    --exec-opt native.cgroupdriver=cgroupfs \
    --cgroup-parent "/wflow-swarm-sim-$n" \
    --insecure-registry "$registry" \
    >"$dir/dockerd.log" 2>&1 </dev/null 9>&- &
  wait_for 60 on "$n" version || { echo "swarm-sim: dockerd of $n did not start:" >&2; tail -20 "$dir/dockerd.log" >&2; exit 1; }
}

start() {
  if ready; then
    echo "swarm-sim: already running (manager $(sock n1))"
    return
  fi
  need
  stop quiet # what a start cut short left
  # The bridge's subnet must be free on this machine.
  if ip -4 route show | grep -q "^$subnet\."; then
    echo "swarm-sim: this machine already routes $subnet.0/24 ($(ip -4 route show | grep "^$subnet\." | head -1)); the simulation needs it" >&2
    exit 1
  fi
  mkdir -p "$state" "$data"
  ip link add "$bridge" type bridge
  ip addr add "$subnet.1/24" dev "$bridge"
  ip link set "$bridge" up
  # Docker on this machine may filter bridged traffic (br_netfilter): let the nodes' through.
  if iptables -L DOCKER-USER >/dev/null 2>&1; then
    iptables -I DOCKER-USER -i "$bridge" -o "$bridge" -j ACCEPT
  fi
  start_registry false

  for n in "${nodes[@]}"; do
    echo "swarm-sim: starting node $n at $(addr "$n")"
    start_node "$n"
  done
  on n1 swarm init --advertise-addr "$(addr n1)" >/dev/null
  token=$(on n1 swarm join-token -q worker)
  for n in "${nodes[@]:1}"; do
    on "$n" swarm join --token "$token" "$(addr n1):2377" >/dev/null
  done
  wait_for 60 sh -c "[ \"\$(timeout 10 docker -H $(sock n1) node ls --format '{{.Status}}' | grep -c Ready)\" = ${#nodes[@]} ]" ||
    { echo "swarm-sim: the nodes did not all become ready:" >&2; on n1 node ls >&2; exit 1; }

  # The test image, in the registry: a job that names it by digest may
  # run on any node, which pulls it from there. Then the registry turns
  # read-only: nothing else that reaches it can push.
  docker save "$image" | on n1 load -q >/dev/null
  on n1 tag "$image" "$registry/$image"
  wait_for 20 on n1 push "$registry/$image" || { echo "swarm-sim: pushing to the registry failed:" >&2; on n1 push "$registry/$image" >&2; tail -5 "$state/registry.log" >&2; exit 1; }
  start_registry true

  cat >"$state/cluster.env.tmp" <<EOF
# The simulated swarm of scripts/swarm-sim.sh.
WFLOW_SIM_MANAGER=$(sock n1)
WFLOW_SIM_NODES="$(for n in "${nodes[@]}"; do printf '%s ' "$(sock "$n")"; done)"
WFLOW_SIM_REGISTRY=$registry
WFLOW_SIM_IMAGE=$registry/$image
EOF
  mv "$state/cluster.env.tmp" "$state/cluster.env"
  echo "swarm-sim: ready: manager $(sock n1), workers on n2 and n3, registry $registry (see $state/cluster.env)"
}


stop() {
  [ "${1:-}" = quiet ] || echo "swarm-sim: stopping"
  rm -f "$state/cluster.env"
  for n in "${nodes[@]}"; do
    local dir=$state/$n
    # The node's containers first, while its engine answers.
    if [ -S "$dir/docker.sock" ]; then
      ids=$(on "$n" ps -aq 2>/dev/null || true)
      [ -z "$ids" ] || on "$n" rm -f $ids >/dev/null 2>&1 || true
    fi
    stop_pid "$dir/docker.pid" dockerd
    # containerd's shims outlive it; whatever they still run is the node's.
    pkill -9 -f "containerd-shim.*-address $dir/containerd.sock" 2>/dev/null || true
    stop_pid "$dir/containerd.pid" containerd
    # Mounts the node's engine left (its overlay layers, its netns files).
    grep -E " ($data/$n|$dir)/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    ip netns del "wflsim-$n" 2>/dev/null || true
    ip link del "wflsim-$n" 2>/dev/null || true
  done
  stop_pid "$state/registry.pid" docker-registry
  if ip link show "$bridge" >/dev/null 2>&1; then
    ip link del "$bridge"
  fi
  while iptables -D DOCKER-USER -i "$bridge" -o "$bridge" -j ACCEPT 2>/dev/null; do :; done
  rm -rf "$state" "$data"
}

link() { # link NODE up|down: the node's cable, the bridge's end of its link
  case "${1:-}" in n2|n3) ;; *) echo "swarm-sim: partition or heal n2 or n3 (n1 is the manager wflow talks to)" >&2; exit 2 ;; esac
  ip link set "wflsim-$1" "$2"
}

case "${1:-}" in
  start|stop|partition|heal)
    if [ "$(id -u)" != 0 ]; then
      echo "swarm-sim: run as root (it makes network namespaces and starts engines)" >&2
      exit 1
    fi
    # One at a time: a start and a stop at once would undo each other.
    exec 9>/run/wflow-swarm-sim.lock
    flock 9
    ;;
esac
case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) ready ;;
  partition) link "${2:-}" down ;;
  heal) link "${2:-}" up ;;
  *) echo "usage: $0 start|stop|status|partition NODE|heal NODE" >&2; exit 2 ;;
esac
