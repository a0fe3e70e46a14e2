# Sourced by the image scripts: podman as it runs on a machine without systemd (cgroupfs,
# events to a file). Storage stays podman's default (overlay where the kernel has it);
# PODMAN_STORAGE_DRIVER=vfs for kernels or filesystems where overlay does not mount.
podman_() {
  podman --cgroup-manager cgroupfs --events-backend file \
    ${PODMAN_STORAGE_DRIVER:+--storage-driver "$PODMAN_STORAGE_DRIVER"} "$@"
}
