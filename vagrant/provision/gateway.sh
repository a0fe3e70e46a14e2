#!/usr/bin/env bash
# The gateway VM: forwards between the nodes and routes each pod CIDR to its node.
# Usage: gateway.sh CIDR=NODE_IP[,CIDR=NODE_IP...]
set -euo pipefail
sysctl -qw net.ipv4.ip_forward=1
# Node-to-node traffic is policy-routed through here and comes back out the same link.
sysctl -qw net.ipv4.conf.all.send_redirects=0
sysctl -qw net.ipv4.conf.default.send_redirects=0
IFS=, read -ra routes <<< "$1"
for r in "${routes[@]}"; do
  ip route replace "${r%%=*}" via "${r##*=}"
done
echo "gateway: forwarding; routes: $1"
