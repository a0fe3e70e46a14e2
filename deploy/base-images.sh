#!/usr/bin/env bash
# Makes, in local podman storage, the base images deploy/Dockerfile names
# (node:20-bookworm for the build stage, node:20-bookworm-slim for the runtime) when no
# registry can be pulled from: a debootstrap'ed Debian 12 (minbase) with this machine's node
# and npm in /usr/local, where the official node images keep them. Both names get the same
# image: the Dockerfile installs what each stage needs with apt-get.
#
# Idempotent: an image already in storage is kept (FORCE=1 rebuilds). Packages come from
# the Debian mirror this machine's apt sources name, read at run time; those sources are
# copied into the image so the Dockerfile's apt-get reaches the same mirror.
set -euo pipefail
cd "$(dirname "$0")"
source ./podman.sh

IMAGES=(docker.io/library/node:20-bookworm docker.io/library/node:20-bookworm-slim)
SUITE=bookworm

missing=()
for img in "${IMAGES[@]}"; do
  if [ "${FORCE:-0}" = 1 ] || ! podman_ image exists "$img"; then missing+=("$img"); fi
done
[ ${#missing[@]} -eq 0 ] && { echo "base-images: ${IMAGES[*]} present"; exit 0; }

# The node the project runs with here (package.json: engines.node >= 20.19).
node_bin=$(command -v node)
node --input-type=module -e '
  const [maj, min] = process.versions.node.split(".").map(Number);
  if (maj !== 20 || min < 19) { console.error(`base-images: node ${process.version} on this machine, need 20.x >= 20.19`); process.exit(1); }'
npm_dir=$(readlink -f "$(dirname "$(readlink -f "$(command -v npm)")")/..")

# The first deb822 source or sources.list line that serves $SUITE's main component.
mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '
      function flush() { if (uri && ok) print uri; uri = ""; ok = 0 }
      /^$/ { flush() }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
      END { flush() }' "$f"
  done
  if [ -f /etc/apt/sources.list ]; then
    awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2 }' /etc/apt/sources.list
  fi
}
url=$(mirror | head -n1 || true)
[ -n "$url" ] || { echo "base-images: no apt source for $SUITE in /etc/apt/sources.list{,.d}" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "base-images: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/netfence-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
echo "base-images: debootstrap $SUITE (minbase) into $rootfs"
debootstrap --variant=minbase "$SUITE" "$rootfs" "$url" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }

# apt inside the image: this machine's sources, no recommends, no caches.
rm -f "$rootfs/etc/apt/sources.list"
cp -a /etc/apt/sources.list.d/. "$rootfs/etc/apt/sources.list.d/"
find "$rootfs/etc/apt/sources.list.d" -type f ! -name '*.sources' ! -name '*.list' -delete
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$rootfs/etc/apt/"
echo 'APT::Install-Recommends "false";' > "$rootfs/etc/apt/apt.conf.d/90netfence-no-recommends"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

install -D -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/lib/node_modules"
cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

# Node's headers where node-gyp finds them (no download), and the CA bundle this machine's
# npm trusts (a TLS-intercepting proxy may sit before the npm registry): npm's global config.
cp -a "$(dirname "$node_bin")/../include/node" "$rootfs/usr/local/include/node"
printf 'nodedir=/usr/local\nfund=false\naudit=false\nupdate-notifier=false\n' > "$rootfs/usr/local/etc/npmrc"
ca=$(npm config get cafile 2>/dev/null || true)
[ -f "$ca" ] || ca=/etc/ssl/certs/ca-certificates.crt
if [ -f "$ca" ]; then
  install -D -m 0644 "$ca" "$rootfs/usr/local/etc/ssl/ca-certificates.crt"
  echo 'cafile=/usr/local/etc/ssl/ca-certificates.crt' >> "$rootfs/usr/local/etc/npmrc"
fi

tar -C "$rootfs" --numeric-owner -cf "$work/rootfs.tar" .
for img in "${missing[@]}"; do
  podman_ import -q --change 'CMD ["node"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$work/rootfs.tar" "$img" >/dev/null
  echo "base-images: $img"
done
