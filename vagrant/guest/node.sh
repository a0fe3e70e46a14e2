#!/usr/bin/env bash
# A node VM: its pods (from the shared state, spec.nodeName = this node) as network
# namespaces with Calico-style veths (a /32 route on the host, proxy ARP), a lab server in
# each pod and one on the host (the node policy's ports), routes to the other nodes' pod
# CIDRs via the gateway, and the netfence agent on the shared state, as systemd units so
# they outlive the ssh session. Returns once the agent reports the state enforced.
# Usage: node.sh NODE_NAME ADDRESS/PREFIX GATEWAY_IP OTHER_POD_CIDRS(comma-separated)
set -euo pipefail
node=$1 address=$2 gateway=$3 others=$4
state=/netfence/vagrant/state
cd /netfence

ip addr replace "$address" dev eth1
ip link set eth1 up
IFS=, read -ra cidrs <<< "$others"
for c in "${cidrs[@]}"; do ip route replace "$c" via "$gateway" dev eth1; done
# Replies from the other node's pods come back via the gateway; the gateway must stay on
# the path (no ICMP redirect may shortcut it).
sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth1.rp_filter=0
sysctl -qw net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.eth1.accept_redirects=0
sysctl -qw net.ipv4.ip_forward=1

# "namespace-name ip" of this node's pods, read by the parser the agent uses.
pods=$(node -e '
  const { loadStateDir } = require("./dist/src/sources/directory");
  for (const p of loadStateDir(process.argv[1]).pods)
    if (p.nodeName === process.argv[2] && !p.hostNetwork) console.log(p.namespace + "-" + p.name, p.ips[0]);
' "$state" "$node")

while read -r name ip; do
  [ -n "$name" ] || continue
  ns="pod-$name" host="v-${name:0:12}"
  ip netns del "$ns" 2>/dev/null || true
  ip netns add "$ns"
  # Created here, then moved: Debian 12's kernel refuses a peer netns given at creation
  # ("Peer netns reference is invalid").
  ip link add "$host" type veth peer name "p-${name:0:12}"
  ip link set "p-${name:0:12}" netns "$ns"
  ip -n "$ns" link set "p-${name:0:12}" name eth0
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
  ip -n "$ns" addr add "$ip/32" dev eth0
  ip -n "$ns" route add 169.254.1.1 dev eth0 scope link
  ip -n "$ns" route add default via 169.254.1.1 dev eth0
  ip link set "$host" up
  sysctl -qw "net.ipv4.conf.$host.proxy_arp=1"
  # Proxy ARP answers only for an address the host has a route to, and these guests
  # have no default route (the management network is isolated): the pod's gateway
  # address gets the host veth's MAC as a permanent neighbour instead.
  ip -n "$ns" neigh replace 169.254.1.1 lladdr "$(cat "/sys/class/net/$host/address")" dev eth0 nud permanent
  ip route replace "$ip/32" dev "$host"
  systemd-run -q --working-directory=/netfence --unit "lab-$name" ip netns exec "$ns" node dist/src/lab/server.js "$name" 80/TCP 53/UDP
done <<< "$pods"
systemd-run -q --working-directory=/netfence --unit lab-host node dist/src/lab/server.js "$node" 8080/TCP 8081/TCP

systemd-run -q --working-directory=/netfence --unit netfence-agent --setenv NODE_NAME="$node" \
  node dist/src/cli/main.js agent --state "$state"
# Ready = the first state is enforced (TCG makes the program load slow: minutes, not
# seconds); an agent that exited (a program the kernel refuses) fails at once.
for _ in $(seq 120); do
  if node -e 'require("node:http").get("http://127.0.0.1:9402/readyz", (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on("error", () => process.exit(1))'; then
    echo "$node: agent ready"
    exit 0
  fi
  systemctl is-failed -q netfence-agent && break
  sleep 5
done
journalctl -u netfence-agent --no-pager -o cat | grep -v '^[0-9]*: ' | tail -20 | cut -c1-300
echo "$node: agent not ready" >&2
exit 1
