#!/usr/bin/env bash
# A node VM: its pods (from /netfence-state, spec.nodeName = this node) as network
# namespaces with Calico-style veths (/32 route on the host, proxy ARP), a lab server in
# each pod, routes to the other nodes' pod CIDRs via the gateway, and the netfence agent
# on the shared state directory, as systemd units so they outlive the provisioner.
# Usage: node.sh NODE_NAME GATEWAY_IP OTHER_POD_CIDRS(comma-separated)
set -euo pipefail
node=$1 gateway=$2 others=$3
cd /netfence

IFS=, read -ra cidrs <<< "$others"
for c in "${cidrs[@]}"; do ip route replace "$c" via "$gateway"; done
# Replies from pods on the other node arrive via the gateway, not the way they left.
sysctl -qw net.ipv4.conf.all.rp_filter=0
sysctl -qw net.ipv4.ip_forward=1

# "name ip" of this node's pods, from the state directory (the same parser the agent uses).
pods=$(node -e '
  const { loadStateDir } = require("./dist/src/sources/directory");
  const s = loadStateDir("/netfence-state");
  for (const p of s.pods) if (p.nodeName === process.argv[1] && !p.hostNetwork) console.log(p.namespace + "-" + p.name, p.ips[0]);
' "$node")

while read -r name ip; do
  [ -n "$name" ] || continue
  ns="pod-$name" host="v-${name:0:12}"
  ip netns del "$ns" 2>/dev/null || true
  ip netns add "$ns"
  ip link add "$host" type veth peer name eth0 netns "$ns"
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
  ip -n "$ns" addr add "$ip/32" dev eth0
  ip -n "$ns" route add 169.254.1.1 dev eth0 scope link
  ip -n "$ns" route add default via 169.254.1.1 dev eth0
  ip link set "$host" up
  sysctl -qw "net.ipv4.conf.$host.proxy_arp=1"
  ip route replace "$ip/32" dev "$host"
  systemctl stop "lab-$name" 2>/dev/null || true
  systemd-run --unit "lab-$name" ip netns exec "$ns" node /netfence/dist/src/lab/server.js "$name" 80/TCP 53/UDP
done <<< "$pods"

systemctl stop netfence-agent 2>/dev/null || true
systemd-run --unit netfence-agent --setenv NODE_NAME="$node" \
  node /netfence/dist/src/cli/main.js agent --state /netfence-state
# Ready = the first state is enforced.
for _ in $(seq 60); do
  curl -fsS http://127.0.0.1:9402/readyz >/dev/null 2>&1 && { echo "$node: agent ready"; exit 0; }
  sleep 1
done
journalctl -u netfence-agent --no-pager | tail -50
echo "$node: agent not ready after 60 s" >&2
exit 1
