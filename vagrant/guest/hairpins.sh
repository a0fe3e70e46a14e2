#!/usr/bin/env bash
# Packets the gateway forwarded from a pod CIDR back into the same CIDR (see gateway.sh).
# Usage: hairpins.sh CIDR
set -euo pipefail
iptables -L NETFENCE-HAIRPIN -n -v -x | awk -v c="$1" '$8 == c && $9 == c { print $1 }'
