#!/usr/bin/env bash
# One-shot, idempotent set-up for a fresh Debian 12 machine (as root): system packages,
# bpffs, npm dependencies, and the three builds (BPF objects, native addon, TypeScript).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(clang llvm libbpf-dev libelf-dev zlib1g-dev libnl-3-dev libnl-route-3-dev bpftool
  iproute2 iptables nftables ipset iputils-ping iperf3 conntrack make g++ python3 pkg-config
  containernetworking-plugins)
# `kubectl kustomize` (test/unit/kustomize.test.ts): Debian's kubernetes-client, unless some
# kubectl is installed already (its /usr/bin/kubectl would conflict with the package's).
command -v kubectl >/dev/null || APT_PACKAGES+=(kubernetes-client)
# The agent image (npm run test:image): podman builds it and runs it with runc, debootstrap
# makes its base.
APT_PACKAGES+=(podman runc debootstrap)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! mountpoint -q /sys/fs/bpf; then
  mkdir -p /sys/fs/bpf
  mount -t bpf bpf /sys/fs/bpf
fi

# npm ci only when the lock file changed since the last install.
stamp=node_modules/.netfence-lock-stamp
lockhash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lockhash" ]; then
  npm ci --no-audit --no-fund
  echo "$lockhash" > "$stamp"
fi

npm run --silent build
