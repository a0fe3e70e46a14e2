# Sourced by the image scripts (and test/image/run.ts): podman as it works on a machine
# without systemd. runc, not crun: crun 1.8 refuses a hybrid cgroup v1/v2 layout. cgroupfs
# and events to a file: no systemd. Storage stays podman's default (overlay where the kernel
# has it); PODMAN_STORAGE_DRIVER=vfs where overlay does not mount.
podman_() {
  local global=(--runtime runc --cgroup-manager cgroupfs --events-backend file
    ${PODMAN_STORAGE_DRIVER:+--storage-driver "$PODMAN_STORAGE_DRIVER"})
  if [ "${1:-}" = run ]; then
    # podman's default rlimits (nofile 1048576) can exceed the hard limits here, and root
    # without CAP_SYS_RESOURCE cannot raise them; podman itself caps nproc at 32768.
    shift
    set -- run --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=32768:32768 "$@"
  fi
  podman "${global[@]}" "$@"
}
