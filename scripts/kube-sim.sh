#!/usr/bin/env bash
# A Kubernetes control plane on this machine, with no kubelet, for wflow's
# Kubernetes engine (issue 15): etcd, kube-apiserver, kube-controller-manager
# and kube-scheduler, built from the Go module proxy (tools/k8s), and kwok
# faking one node whose pods run nothing but go through their life cycle.
#
#   scripts/kube-sim.sh build    build the binaries into the cache (once per version)
#   scripts/kube-sim.sh start    build if needed, start it all, wait for the node to be ready
#   scripts/kube-sim.sh stop     stop it and remove its state
#   scripts/kube-sim.sh status   exit 0 when the API server answers and the node is ready
#   scripts/kube-sim.sh leftovers  print how many Jobs, pods and NetworkPolicies wflow
#                                  made are left, in every namespace (0 when it is not running)
#
# Everything listens on 127.0.0.1. /run/wflow-kube-sim/kubeconfig reaches
# the API server as an administrator (system:masters), verifying its
# self-signed certificate.
#
# The fake node's pods (kwok stages written for wflow, below) take what
# they do from the environment of their first container, as a step's env
# gives it:
#   WFLOW_KWOK_WAITING=REASON   the container never starts, waiting with
#                               REASON (ErrImageNeverPull, say)
#   WFLOW_KWOK_RUN_TIME=DUR     a pod of a Job runs for DUR (a Go duration;
#                               default 100ms), then ends with
#   WFLOW_KWOK_EXIT_CODE=N      exit code N (default 0) and
#   WFLOW_KWOK_REASON=WORD      reason WORD (default Completed or Error;
#                               OOMKilled, say)
# Every other pod bound to the node runs until deleted; a deleted pod goes
# at once. The pods of namespace wflow-kwok-logs all have the log of
# $state/pod.log (CRI format; kwok's own log server), those of
# wflow-kwok-cli that of $state/cli-pod.log, the others an empty one. A PersistentVolume
# wflow-kube-sim-runs (hostPath $data/runs) is there to be claimed.
# The binaries are cached under ${WFLOW_K8S_CACHE:-~/.cache/wflow-k8s}/<versions>.
set -euo pipefail
. "$(dirname "$0")/lib/procs.sh"
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

state=/run/wflow-kube-sim
data=/var/lib/wflow-kube-sim
tools=tools/k8s
api=127.0.0.1:16443
etcd_client=127.0.0.1:23790
etcd_peer=127.0.0.1:23800
node=wflow-kube-sim-node
kwok_port=10350

modversion() { awk -v m="$2" '$1 == "require" && $2 == m { print $3 } $1 == m { print $2 }' "$tools/$1/go.mod" | head -1; }
k8s_version=$(modversion control-plane k8s.io/kubernetes)
etcd_version=$(modversion etcd go.etcd.io/etcd/server/v3)
kwok_version=$(modversion kwok sigs.k8s.io/kwok)
cache=${WFLOW_K8S_CACHE:-$HOME/.cache/wflow-k8s}/k8s-$k8s_version-etcd-$etcd_version-kwok-$kwok_version
bin=$cache/bin


build() {
  if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kube-controller-manager" ] && [ -x "$bin/kube-scheduler" ] &&
    [ -x "$bin/etcd" ] && [ -x "$bin/kwok" ]; then
    return
  fi
  mkdir -p "$bin"
  local start=$SECONDS v=${k8s_version#v}
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=${v%%.*} -X k8s.io/component-base/version.gitMinor=$(echo "$v" | cut -d. -f2) -X k8s.io/component-base/version.gitTreeState=clean"
  echo "kube-sim: building Kubernetes $k8s_version, etcd $etcd_version and kwok $kwok_version into $bin (minutes, once)"
  (cd "$tools/control-plane" && go build -trimpath -ldflags "$ldflags" -o "$bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler)
  (cd "$tools/etcd" && go build -trimpath -ldflags "-s -w" -o "$bin/etcd" .)
  (cd "$tools/kwok" && go build -trimpath -ldflags "-s -w" -o "$bin/kwok" sigs.k8s.io/kwok/cmd/kwok)
  echo "kube-sim: built in $((SECONDS - start)) s"
}

kubectl_get() { # kubectl_get PATH: GET an API path as the administrator
  curl -sf --cacert "$state/apiserver/apiserver.crt" -H "Authorization: Bearer $(cat "$state/token")" "https://$api$1"
}

kubectl_send() { # kubectl_send METHOD PATH JSON: send an object as the administrator
  curl -sf --cacert "$state/apiserver/apiserver.crt" -H "Authorization: Bearer $(cat "$state/token")" \
    -H "Content-Type: application/${4:-json}" -X "$1" "https://$api$2" -d "$3" >/dev/null
}

claim_bound() {
  kubectl_get /api/v1/namespaces/default/persistentvolumeclaims/wflow-runs | tr -d ' \n' | grep -q '"phase":"Bound"'
}

node_ready() {
  kubectl_get "/api/v1/nodes/$node" | tr -d ' \n' | grep -q '"type":"Ready","status":"True"'
}

ready() { [ -f "$state/kubeconfig" ] && wait_for 2 node_ready; }

# spawn NAME CMD...: start a component in the background, its log and pid in $state.
spawn() {
  local name=$1; shift
  setsid "$@" >"$state/$name.log" 2>&1 </dev/null &
  echo $! >"$state/$name.pid"
}

start() {
  if ready; then
    echo "kube-sim: already running (kubeconfig $state/kubeconfig)"
    return
  fi
  build
  stop quiet
  mkdir -p "$state/apiserver" "$data"
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$state/token"
  echo "$(cat "$state/token"),wflow-admin,wflow-admin,system:masters" >"$state/tokens.csv"
  openssl genrsa -out "$state/sa.key" 2048 2>/dev/null
  openssl rsa -in "$state/sa.key" -pubout -out "$state/sa.pub" 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$node" -addext "subjectAltName=IP:127.0.0.1" \
    -keyout "$state/kwok.key" -out "$state/kwok.crt" 2>/dev/null

  spawn etcd "$bin/etcd" --name wflow --data-dir "$data/etcd" \
    --listen-client-urls "http://$etcd_client" --advertise-client-urls "http://$etcd_client" \
    --listen-peer-urls "http://$etcd_peer" --initial-advertise-peer-urls "http://$etcd_peer" \
    --initial-cluster "wflow=http://$etcd_peer" --log-level warn
  spawn kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers "http://$etcd_client" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "${api#*:}" \
    --cert-dir "$state/apiserver" --token-auth-file "$state/tokens.csv" \
    --authorization-mode Node,RBAC \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$state/sa.pub" --service-account-signing-key-file "$state/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16
  wait_for 90 kubectl_get /readyz || { echo "kube-sim: the API server did not get ready:" >&2; tail -20 "$state/kube-apiserver.log" >&2; exit 1; }

  cat >"$state/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: wflow-kube-sim
  cluster:
    server: https://$api
    certificate-authority: $state/apiserver/apiserver.crt
users:
- name: wflow-admin
  user:
    token: $(cat "$state/token")
contexts:
- name: wflow-kube-sim
  context: {cluster: wflow-kube-sim, user: wflow-admin, namespace: default}
current-context: wflow-kube-sim
EOF
  spawn kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$state/kubeconfig" \
    --controllers job-controller,garbage-collector-controller,serviceaccount-controller,serviceaccount-token-controller,namespace-controller,ttl-after-finished-controller,persistentvolume-binder-controller,root-ca-certificate-publisher-controller \
    --service-account-private-key-file "$state/sa.key" --root-ca-file "$state/apiserver/apiserver.crt" \
    --pvclaimbinder-sync-period 1s \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port 10357
  spawn kube-scheduler "$bin/kube-scheduler" --kubeconfig "$state/kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port 10359
  write_stages
  spawn kwok "$bin/kwok" --kubeconfig "$state/kubeconfig" --config "$state/kwok.yaml" \
    --manage-single-node "$node" --node-ip 127.0.0.1 --node-port "$kwok_port" \
    --server-address "127.0.0.1:$kwok_port" --tls-cert-file "$state/kwok.crt" --tls-private-key-file "$state/kwok.key"

  kubectl_send POST /api/v1/nodes "{\"metadata\":{\"name\":\"$node\",\"labels\":{\"kubernetes.io/hostname\":\"$node\",\"type\":\"kwok\"}}}"
  wait_for 60 node_ready || { echo "kube-sim: the fake node did not get ready:" >&2; tail -20 "$state/kwok.log" >&2; exit 1; }
  # The API server taints a new node not-ready (admission plugin
  # TaintNodesByCondition); the node lifecycle controller, which would lift
  # it, is not run (it would also evict the pods of a node whose heartbeats
  # it misses): the taint is lifted here, once.
  kubectl_send PATCH "/api/v1/nodes/$node" '{"spec":{"taints":null}}' merge-patch+json
  # The run directories' storage: a volume on this machine, claimed in
  # namespace default, which wflow sees at the same path.
  mkdir -p "$data/runs"
  kubectl_send POST /api/v1/persistentvolumes "{\"metadata\":{\"name\":\"wflow-kube-sim-runs\"},\"spec\":{\"capacity\":{\"storage\":\"10Gi\"},\"accessModes\":[\"ReadWriteMany\"],\"persistentVolumeReclaimPolicy\":\"Retain\",\"storageClassName\":\"\",\"hostPath\":{\"path\":\"$data/runs\"},\"claimRef\":{\"namespace\":\"default\",\"name\":\"wflow-runs\"}}}"
  kubectl_send POST /api/v1/namespaces/default/persistentvolumeclaims '{"metadata":{"name":"wflow-runs"},"spec":{"accessModes":["ReadWriteMany"],"storageClassName":"","volumeName":"wflow-kube-sim-runs","resources":{"requests":{"storage":"10Gi"}}}}'
  wait_for 60 claim_bound || { echo "kube-sim: the claim wflow-runs was not bound:" >&2; tail -20 "$state/kube-controller-manager.log" >&2; exit 1; }
  echo "kube-sim: ready: Kubernetes $k8s_version at https://$api, one fake node; KUBECONFIG=$state/kubeconfig"
  echo "kube-sim: run directories: --k8s-volume-claim wflow-runs --k8s-volume-root $data/runs (namespace default)"
}

# write_stages writes kwok's configuration: the stages of the fake node and
# of its pods (kwok v0.8 has none of its own).
write_stages() {
  cat >"$state/kwok.yaml" <<'EOF'
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: wflow-node-ready
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: NotIn
      values: ['True']
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - type: Ready
        status: "True"
        reason: KubeletReady
        message: kwok fakes this node for wflow's tests
        lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
      addresses:
      - {type: InternalIP, address: {{ NodeIP | Quote }}}
      - {type: Hostname, address: {{ NodeName | Quote }}}
      daemonEndpoints:
        kubeletEndpoint:
          Port: {{ NodePort }}
      allocatable: {cpu: "64", memory: 256Gi, pods: "1000"}
      capacity: {cpu: "64", memory: 256Gi, pods: "1000"}
      nodeInfo:
        architecture: amd64
        operatingSystem: linux
        kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
        containerRuntimeVersion: {{ printf "kwok-%s" Version | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: wflow-pod-run
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: '.metadata.deletionTimestamp', operator: DoesNotExist}
    - {key: '.status.podIP', operator: DoesNotExist}
    - {key: '.spec.containers.[0].env.[] | select( .name == "WFLOW_KWOK_WAITING" ) | .value', operator: DoesNotExist}
  next:
    statusTemplate: |
      {{ $now := Now }}
      phase: Running
      hostIP: {{ NodeIP | Quote }}
      podIP: {{ PodIP | Quote }}
      startTime: {{ $now | Quote }}
      conditions:
      {{ range list "PodScheduled" "Initialized" "ContainersReady" "Ready" }}
      - {type: {{ . }}, status: "True", lastTransitionTime: {{ $now | Quote }}}
      {{ end }}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: true
        started: true
        restartCount: 0
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: wflow-pod-end
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: '.metadata.deletionTimestamp', operator: DoesNotExist}
    - {key: '.status.phase', operator: In, values: [Running]}
    - {key: '.metadata.ownerReferences.[].kind', operator: In, values: [Job]}
  delay:
    durationMilliseconds: 100
    durationFrom:
      expressionFrom: '.spec.containers.[0].env.[] | select( .name == "WFLOW_KWOK_RUN_TIME" ) | .value'
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $code := "0" }}{{ $reason := "" }}
      {{ range (index .spec.containers 0).env }}
      {{ if eq .name "WFLOW_KWOK_EXIT_CODE" }}{{ $code = .value }}{{ end }}
      {{ if eq .name "WFLOW_KWOK_REASON" }}{{ $reason = .value }}{{ end }}
      {{ end }}
      {{ if eq $reason "" }}{{ if eq $code "0" }}{{ $reason = "Completed" }}{{ else }}{{ $reason = "Error" }}{{ end }}{{ end }}
      phase: {{ if eq $code "0" }}Succeeded{{ else }}Failed{{ end }}
      conditions:
      - {type: Ready, status: "False", reason: PodCompleted, lastTransitionTime: {{ $now | Quote }}}
      - {type: ContainersReady, status: "False", reason: PodCompleted, lastTransitionTime: {{ $now | Quote }}}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: false
        started: false
        restartCount: 0
        state:
          terminated:
            exitCode: {{ $code }}
            reason: {{ $reason | Quote }}
            finishedAt: {{ $now | Quote }}
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: wflow-pod-waiting
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: '.metadata.deletionTimestamp', operator: DoesNotExist}
    - {key: '.status.containerStatuses', operator: DoesNotExist}
    - {key: '.spec.containers.[0].env.[] | select( .name == "WFLOW_KWOK_WAITING" ) | .value', operator: Exists}
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $reason := "" }}
      {{ range (index .spec.containers 0).env }}{{ if eq .name "WFLOW_KWOK_WAITING" }}{{ $reason = .value }}{{ end }}{{ end }}
      phase: Pending
      hostIP: {{ NodeIP | Quote }}
      startTime: {{ $now | Quote }}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: false
        started: false
        restartCount: 0
        state:
          waiting:
            reason: {{ $reason | Quote }}
            message: kwok keeps this container waiting (WFLOW_KWOK_WAITING)
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: wflow-kwok-logs
spec:
  selector:
    matchNamespaces: [wflow-kwok-logs]
  logs:
  - logsFile: STATE/pod.log
    follow: true
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: wflow-kwok-cli
spec:
  selector:
    matchNamespaces: [wflow-kwok-cli]
  logs:
  - logsFile: STATE/cli-pod.log
    follow: true
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: wflow-kwok-no-logs
spec:
  logs:
  - logsFile: STATE/empty.log
    follow: true
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: wflow-pod-delete
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: '.metadata.deletionTimestamp', operator: Exists}
  next:
    finalizers: {empty: true}
    delete: true
EOF
  sed -i "s|STATE/|$state/|" "$state/kwok.yaml"
  : >"$state/pod.log"
  : >"$state/cli-pod.log"
  : >"$state/empty.log"
}


# leftovers counts the objects labelled io.wflow.run (wflow names them all
# wflow-..., and kube's own generated names keep that prefix).
leftovers() {
  ready || { echo 0; return; }
  local n=0 path
  for path in /apis/batch/v1/jobs /api/v1/pods /apis/networking.k8s.io/v1/networkpolicies; do
    n=$((n + $(kubectl_get "$path?labelSelector=io.wflow.run" | tr -d ' \n' | { grep -o '"generateName":"wflow-' || true; } | wc -l)))
  done
  echo "$n"
}

stop() {
  [ "${1:-}" = quiet ] || echo "kube-sim: stopping"
  rm -f "$state/kubeconfig"
  for c in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    # comm holds at most 15 characters
    stop_pid "$state/$c.pid" "$(printf %.15s "$c")"
  done
  rm -rf "$state" "$data"
}

case "${1:-}" in
  build) build ;;
  start|stop)
    if [ "$(id -u)" != 0 ]; then
      echo "kube-sim: run as root (its state is under /run and /var/lib)" >&2
      exit 1
    fi
    exec 9>/run/wflow-kube-sim.lock
    flock 9
    "$1" 9>&-
    ;;
  status) ready ;;
  leftovers) leftovers ;;
  *) echo "usage: $0 build|start|stop|status|leftovers" >&2; exit 2 ;;
esac
