#!/usr/bin/env bash
# The gateway VM: forwards between the nodes, routes each pod CIDR to its node, and counts
# the same-node (hairpin) packets the transparent tunnel sends it.
# Usage: gateway.sh ADDRESS/PREFIX CIDR=NODE_IP[,CIDR=NODE_IP...]
set -euo pipefail
ip addr replace "$1" dev eth1
ip link set eth1 up
sysctl -qw net.ipv4.ip_forward=1
# Traffic between the nodes leaves by the link it came in on: a redirect would teach the
# nodes to skip this hop.
sysctl -qw net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth1.send_redirects=0
iptables -N NETFENCE-HAIRPIN 2>/dev/null || iptables -F NETFENCE-HAIRPIN
iptables -C FORWARD -j NETFENCE-HAIRPIN 2>/dev/null || iptables -I FORWARD -j NETFENCE-HAIRPIN
IFS=, read -ra routes <<< "$2"
for r in "${routes[@]}"; do
  ip route replace "${r%%=*}" via "${r##*=}"
  # A packet from a node's pod CIDR back to the same CIDR is a tunnelled hairpin.
  iptables -A NETFENCE-HAIRPIN -s "${r%%=*}" -d "${r%%=*}" -j ACCEPT
done
echo "gateway: forwarding; routes: $2"
