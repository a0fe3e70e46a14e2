#!/usr/bin/env bash
# Builds deploy/Dockerfile with podman on this machine, under the image name the DaemonSet
# runs (or $1): makes the base images first (base-images.sh), never pulls. RUN steps use
# chroot isolation (no OCI runtime, so no rlimits or cgroups to set up)
# and the host network (apt and npm reach what this machine reaches).
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/podman.sh

image=${1:-$(awk '$1 == "image:" { print $2; exit }' deploy/daemonset.yaml)}
bash deploy/base-images.sh
podman_ build --isolation chroot --pull=never --network host --layers \
  -f deploy/Dockerfile -t "$image" .
echo "build-image: $image, $(podman_ image inspect --format '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
