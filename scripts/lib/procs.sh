# Shell helpers of the scripts that start daemons (swarm-sim.sh, kube-sim.sh).
# Source it; it defines functions only.

# wait_for SECONDS CMD...: run CMD until it succeeds or the time is up.
wait_for() {
  local until=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $until ] || return 1
    sleep 0.2
  done
}

# stop_pid FILE NAME: stop the process FILE names, if it is still NAME (a
# pid from a file may have been reused since): TERM, then KILL after 20 s.
stop_pid() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  rm -f "$1"
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 0
  kill "$pid" 2>/dev/null || true
  wait_for 20 sh -c "! kill -0 $pid 2>/dev/null" || kill -9 "$pid" 2>/dev/null || true
}
