#!/usr/bin/env bash
# The Vagrant test (`npm run test:vagrant`, as root, on a built checkout): three emulated
# Debian 12 VMs (gw, node1, node2), a netfence agent on each node reading the shared state
# vagrant/state/, pods as network namespaces, and real connections across the gateway.
# Prints a truth table and exits 1 on any mismatch. Everything VM-related (libvirtd, its
# bridges and dnsmasq, vagrant, ssh) lives in a network namespace this script creates;
# on exit (success, failure or a signal) the VMs are destroyed, libvirtd and every process
# it left are ended by PID, and the namespace is deleted.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
started=$(date +%s)
log() { echo "vagrant test [$(($(date +%s) - started))s]: $*" >&2; }

bash vagrant/deps.sh
BOX=$(bash vagrant/build-box.sh)
log "box $BOX"

NS=netfence-vagrant-$$
work=$(mktemp -d /tmp/netfence-vagrant.XXXXXX)
export VAGRANT_CWD=$repo/vagrant VAGRANT_DOTFILE_PATH=$work/dot NETFENCE_BOX=$BOX NETFENCE_STAGE=$work/stage NETFENCE_CONSOLE_DIR=$work
# The Vagrantfile's domain (default_prefix + machine) and network names.
DOMAINS=(netfence-gw netfence-node1 netfence-node2)
NETWORKS=(netfence-mgmt netfence-nodes)
libvirtd_pid=
# The long-running command in progress: run in the background and waited for, so that a
# SIGTERM reaches the cleanup at once instead of after the command ends.
child=
run_child() {
  "$@" &
  child=$!
  local rc=0
  wait "$child" || rc=$?
  child=
  return "$rc"
}
in_ns() { ip netns exec "$NS" "$@"; }
virsh_q() { virsh -q -c qemu:///system "$@" >/dev/null 2>&1; }

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
stop_pid() {
  alive "$1" || return 0
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 50); do alive "$1" || return 0; sleep 0.2; done
  kill -KILL "$1" 2>/dev/null || true
}

# The script's own stdout and stderr: a signal may run the cleanup inside a redirection.
exec 3>&1 4>&2
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  exec 1>&3 2>&4
  log "cleaning up"
  stop_pid "$child"
  if alive "$libvirtd_pid"; then
    # Power off first: vagrant's destroy would wait for a graceful halt of a guest that
    # may never have booted.
    for d in "${DOMAINS[@]}"; do virsh_q destroy "$d"; done
    [ -d "$VAGRANT_DOTFILE_PATH" ] && timeout 300 ip netns exec "$NS" vagrant destroy -f >"$work/destroy.log" 2>&1
    # Whatever vagrant left (a failed up, an interrupted destroy).
    for d in "${DOMAINS[@]}"; do virsh_q undefine "$d" --remove-all-storage; done
    for n in "${NETWORKS[@]}"; do
      virsh_q net-destroy "$n"
      virsh_q net-undefine "$n"
    done
  fi
  # qemu and dnsmasq outlive libvirtd: read their PIDs before it goes.
  local pids=()
  for f in "${DOMAINS[@]/#//run/libvirt/qemu/}" "${NETWORKS[@]/#//run/libvirt/network/}"; do
    [ -f "$f.pid" ] && pids+=("$(cat "$f.pid")")
  done
  stop_pid "$libvirtd_pid"
  for p in "${pids[@]}"; do stop_pid "$p"; done
  ip netns del "$NS" 2>/dev/null
  rm -rf "$work"
  log "done (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The built project, without dev dependencies: what the guests run (they cannot build).
mkdir -p "$NETFENCE_STAGE"
{
  printf '%s\n' package.json dist/src native/build/Release/netfence_native.node vagrant/guest vagrant/state
  ls bpf/.output/*.o
  npm ls --omit=dev --all --parseable 2>/dev/null | sed -n "s|^$repo/||p" | grep '^node_modules/'
} > "$work/stage.list"
# Source maps, type declarations and docs are most of node_modules and the guests' rsync is slow.
rsync -a -r --files-from="$work/stage.list" --exclude='*.map' --exclude='*.d.ts' --exclude='*.md' "$repo/" "$NETFENCE_STAGE/"
log "staged $(du -sm "$NETFENCE_STAGE" | cut -f1) MiB for the guests"

# libvirtd in the test's namespace, in the foreground under a subreaper: PID 1 here does
# not reap, and libvirtd's daemonized children (dnsmasq, qemu) must not become zombies.
if [ -f /run/libvirtd.pid ] && alive "$(cat /run/libvirtd.pid)"; then
  log "a libvirtd (pid $(cat /run/libvirtd.pid)) is already running: stop it first"
  exit 1
fi
ip netns add "$NS"
ip -n "$NS" link set lo up
mkdir -p /var/lib/libvirt/images
# virtlogd (qemu's log sink) goes with libvirtd, whichever way libvirtd ends.
ip netns exec "$NS" tini -s -g -- bash -c 'virtlogd & l=$!; libvirtd; rc=$?; kill $l; wait $l; exit $rc' >"$work/libvirtd.log" 2>&1 &
libvirtd_pid=$!
for _ in $(seq 60); do virsh_q version && break; sleep 1; done
virsh_q version || { cat "$work/libvirtd.log" >&2; log "libvirtd did not start"; exit 1; }
# vagrant-libvirt keeps each box's image in the default pool: drop those of older boxes.
for v in $(virsh -q -c qemu:///system vol-list default 2>/dev/null | awk '$1 ~ /^netfence-bookworm-/ {print $1}'); do
  case "$v" in "${BOX}_"*) ;; *) virsh_q vol-delete --pool default "$v" ;; esac
done

log "vagrant up (emulated guests: several minutes)"
if ! run_child timeout 1800 ip netns exec "$NS" vagrant up --provider=libvirt >"$work/up.log" 2>&1; then
  tail -40 "$work/up.log" >&2
  for c in "$work"/*.console; do [ -f "$c" ] && { echo "--- $c" && tail -c 3000 "$c"; } >&2; done
  log "vagrant up failed"
  exit 1
fi
log "VMs up"
in_ns vagrant ssh-config > "$work/ssh.cfg"
on() { local vm=$1; shift; in_ns ssh -F "$work/ssh.cfg" -o LogLevel=ERROR "$vm" sudo "$@"; }

# The gateway first (the agents' tunnel starts once it answers), then both nodes in
# parallel; each returns once its agent enforces the state.
on gw bash /netfence/vagrant/guest/gateway.sh 192.168.56.10/24 10.244.1.0/24=192.168.56.11,10.244.2.0/24=192.168.56.12 >"$work/gw.log" 2>&1 ||
  { cat "$work/gw.log" >&2; log "gateway set-up failed"; exit 1; }
# node1's node address on the management network (cluster.yaml), reached from this
# namespace through the management bridge: the node policy's rows on eth0 need traffic
# to an address the agent knows as node1's, and the DHCP lease is none.
mgmt1=192.168.122.11
on node1 ip addr replace "$mgmt1/32" dev eth0
in_ns ip route replace "$mgmt1/32" dev "$(in_ns ip -o route get "$(awk '$1 == "Host" { h = $2 } h == "node1" && $1 == "HostName" { print $2 }' "$work/ssh.cfg")" | sed -n 's/.* dev \([^ ]*\).*/\1/p')"
on node1 bash /netfence/vagrant/guest/node.sh node1 192.168.56.11/24 192.168.56.10 10.244.2.0/24 >"$work/node1.log" 2>&1 &
n1=$!
on node2 bash /netfence/vagrant/guest/node.sh node2 192.168.56.12/24 192.168.56.10 10.244.1.0/24 >"$work/node2.log" 2>&1 &
n2=$!
# The truth table: one row per check; FAIL on any mismatch.
rows=() failed=0
row() { # CHECK WANT GOT
  local mark=ok
  [ "$2" = "$3" ] || { mark=FAIL; failed=1; }
  rows+=("$(printf '%-4s  %-46s  %-7s  %s' "$mark" "$1" "$2" "$3")")
}
# An agent that is not ready is a failed row; the probes still run and show what it left open.
wait "$n1" && ready1=ready || { ready1=failed; cat "$work/node1.log" >&2; }
wait "$n2" && ready2=ready || { ready2=failed; cat "$work/node2.log" >&2; }
row "node1 agent enforcing the shared state" ready "$ready1"
row "node2 agent enforcing the shared state" ready "$ready2"
log "node set-up done"
# expect.txt rows, each probed on its source's node.
expect=$(grep -v '^\s*#' vagrant/state/expect.txt | sed 's/#.*//' | awk 'NF')
node_of() {
  case "$1" in
    node/*) echo "${1#node/}" ;;
    *) node -e '
      const { loadStateDir } = require("./dist/src/sources/directory");
      const [ns, name] = process.argv[2].split("/");
      console.log(loadStateDir(process.argv[1]).pods.find((p) => p.namespace === ns && p.name === name).nodeName);
    ' vagrant/state "$1" ;;
  esac
}
declare -A want
for vm in node1 node2; do : > "$work/probes.$vm"; done
while read -r from to port verdict; do
  want["$from $to $port"]=$verdict
  echo "$from $to $port" >> "$work/probes.$(node_of "$from")"
done <<< "$expect"

# node1's probes (same-node: the tunnel's hairpin) with the gateway's hairpin counter around them.
hairpins() { on gw bash /netfence/vagrant/guest/hairpins.sh 10.244.1.0/24; }
before=$(hairpins)
on node1 bash /netfence/vagrant/guest/probe.sh < "$work/probes.node1" > "$work/got.node1"
after=$(hairpins)
on node2 bash /netfence/vagrant/guest/probe.sh < "$work/probes.node2" > "$work/got.node2"
while read -r from to port got; do
  row "$from -> $to $port" "${want["$from $to $port"]}" "$got"
done < <(cat "$work/got.node1" "$work/got.node2")
row "gateway saw node1's hairpin (packets)" ">0" "$([ "$after" -gt "$before" ] && echo ">0" || echo "$((after - before))")"

# A hook removed behind the agent's back comes back at once (the agent hears the tc
# deletion over netlink on this kernel too), well before the 30 s resync: the denied
# probe is denied again 2 s after web's clsact qdisc (and every filter on it) went.
on node1 tc qdisc del dev v-shop-web clsact
sleep 2
repaired=$(on "$(node_of shop/intruder)" bash /netfence/vagrant/guest/probe.sh <<< "shop/intruder shop/web 80/TCP" | awk '{ print $4 }')
row "shop/intruder -> shop/web 2 s after tc qdisc del" "deny" "$repaired"

# The node policy denies everything else on every host interface, eth0 included, and the
# privileged rules keep ssh: from this namespace (the management network), ssh still logs
# in and another port is dropped.
row "ssh to node1 under its node policy" "allow" "$(in_ns ssh -F "$work/ssh.cfg" -o LogLevel=ERROR -o HostName="$mgmt1" node1 true >/dev/null 2>&1 && echo allow || echo deny)"
mgmt_probe=$(printf '{"timeoutMs":3000,"targets":[{"id":"p","ip":"%s","port":8081,"protocol":"TCP"}]}' "$mgmt1" |
  in_ns node dist/src/lab/client.js connect | node -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).results[0].verdict')
row "management net -> node1 8081/TCP" "deny" "$mgmt_probe"
# Debian 12's kernel (6.1) has no TCX: the agent attached through clsact filters.
row "node1 eth1 attach (kernel $(on node1 uname -r))" "clsact" "$(on node1 tc filter show dev eth1 ingress | grep -q 'bpf' && echo clsact || echo none)"

printf '\n%-4s  %-46s  %-7s  %s\n' "" "check" "want" "got"
printf '%s\n' "${rows[@]}"
echo
if [ "$failed" -ne 0 ]; then
  on node1 journalctl -u netfence-agent --no-pager 2>/dev/null | tail -30 >&2 || true
  log "FAILED: a row above does not match"
  exit 1
fi
log "passed"
