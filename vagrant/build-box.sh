#!/usr/bin/env bash
# Builds the libvirt box the Vagrant test boots (Debian 12 from this machine's own apt
# mirror; no box can be downloaded here) and adds it to Vagrant. Idempotent and cached: the
# box is named after a hash of its inputs (this script, the node binary, Vagrant's insecure
# key, the mirror), so a changed input builds a new box and an unchanged one is reused.
# Prints the box name on stdout (everything else goes to stderr). Run as root.
#
# Guests reach no package mirror, so the box carries everything the test runs: node (this
# machine's binary; Debian 12's nodejs is 18, the project needs >= 20.19), libbpf1, libelf1,
# libnl, iproute2, iptables, bpftool, rsync (the project is synced in, built on the host).
# This kernel reads no partition tables and there is no udev, so the one partition is
# mounted through an offset loop device and GRUB's boot image is written by hand.
set -euo pipefail
# In a private mount namespace: a mount of the image that leaked into another namespace
# (any `ip netns exec` started meanwhile copies the mount table) would keep the filesystem
# alive past our umount, its last writes still in the journal, where GRUB cannot see them.
if [ -z "${NETFENCE_BOX_PRIVATE:-}" ]; then
  exec env NETFENCE_BOX_PRIVATE=1 unshare --mount --propagation private bash "$0" "$@"
fi
cache=${NETFENCE_VAGRANT_CACHE:-/var/cache/netfence-vagrant}
log() { echo "build-box: $*" >&2; }

PACKAGES=(systemd-sysv udev dbus linux-image-amd64 initramfs-tools kmod openssh-server sudo rsync
  iproute2 iptables libbpf1 libelf1 libnl-3-200 libnl-route-3-200 bpftool libstdc++6 procps
  iputils-ping tcpdump)
DISK_MB=3072
PART_START=2048 # sectors: room for GRUB's core image between the MBR and the partition

# The mirror of this machine's apt sources (deb822 "URIs:" or a one-line "deb URL bookworm").
mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ {print u; exit}' "$f"
  done
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    sed 's/\[[^]]*\] //' | awk '$1=="deb" && $3=="bookworm" {print $2; exit}'
}
MIRROR=$(mirror | head -1 || true)
[ -n "$MIRROR" ] || { log "no bookworm mirror in /etc/apt/sources.list*"; exit 1; }

NODE_BIN=$(command -v node)
VAGRANT_KEY=$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | head -1)
[ -f "$VAGRANT_KEY" ] || { log "Vagrant's insecure key (keys/vagrant.pub) not found: is vagrant installed?"; exit 1; }

HASH=$( { sha256sum "$0" "$NODE_BIN" "$VAGRANT_KEY" | cut -d' ' -f1; echo "$MIRROR"; } | sha256sum | cut -c1-12)
BOX=netfence-bookworm-$HASH
if vagrant box list 2>/dev/null | grep -q "^$BOX "; then
  log "$BOX is cached"
  echo "$BOX"
  exit 0
fi

work=$cache/build-$HASH
root=$work/root
loop=
cleanup() {
  set +e
  for m in dev/pts dev proc sys; do mountpoint -q "$root/$m" && umount "$root/$m"; done
  mountpoint -q "$root" && umount "$root"
  [ -n "$loop" ] && losetup -d "$loop"
  rm -rf "$work"
}
trap cleanup EXIT
rm -rf "$work"
mkdir -p "$root"

log "building $BOX from $MIRROR (node $("$NODE_BIN" --version))"
disk=$work/disk.raw
truncate -s "${DISK_MB}M" "$disk"
echo "$PART_START,,L,*" | sfdisk -q "$disk"
loop=$(losetup -f --show -o $((PART_START * 512)) "$disk")
# GRUB 2.06 cannot read two features e2fsprogs 1.47 turns on by default ("grub>" and no config).
mkfs.ext4 -q -L root -O ^metadata_csum_seed,^orphan_file "$loop"
mount "$loop" "$root"

mkdir -p "$cache/debs"
debootstrap --cache-dir="$cache/debs" --variant=minbase --include="$(IFS=,; echo "${PACKAGES[*]}")" bookworm "$root" "$MIRROR" >&2

mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

install -m 0755 "$NODE_BIN" "$root/usr/local/bin/node"
echo "/dev/vda1 / ext4 errors=remount-ro 0 1" > "$root/etc/fstab"
echo netfence > "$root/etc/hostname"
# eth0 is Vagrant's management network (DHCP); the private network is addressed by the test.
cat > "$root/etc/systemd/network/50-eth0.network" <<'EOF'
[Match]
Name=eth0
[Network]
DHCP=ipv4
[DHCPv4]
ClientIdentifier=mac
EOF
# Every VM of the box gets its own machine-id at first boot (and so its own DHCP lease).
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
in_root systemctl enable systemd-networkd ssh >/dev/null 2>&1
in_root systemctl mask systemd-networkd-wait-online apt-daily.timer apt-daily-upgrade.timer \
  e2scrub_all.timer fstrim.timer man-db.timer >/dev/null 2>&1
in_root useradd -m -s /bin/bash vagrant
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' > "$root/etc/sudoers.d/vagrant"
chmod 0440 "$root/etc/sudoers.d/vagrant"
install -d -m 0700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
install -m 0600 -o 1000 -g 1000 "$VAGRANT_KEY" "$root/home/vagrant/.ssh/authorized_keys"
echo 'UseDNS no' > "$root/etc/ssh/sshd_config.d/vagrant.conf"

# Drivers a VM never needs, so the box (and the initramfs TCG unpacks at boot) stays small.
kver=$(ls "$root/lib/modules")
for d in drivers/gpu drivers/media drivers/net/wireless drivers/infiniband drivers/staging \
  drivers/bluetooth drivers/isdn drivers/iio drivers/hid drivers/usb drivers/scsi/qla2xxx \
  drivers/scsi/lpfc drivers/net/ethernet/mellanox drivers/net/ethernet/intel sound net/wireless \
  net/mac80211 net/bluetooth; do
  rm -rf "$root/lib/modules/$kver/kernel/$d"
done
in_root depmod -a "$kver"
# MODULES=dep would probe this machine: list what a virtio guest needs and take only those.
echo 'MODULES=list' > "$root/etc/initramfs-tools/conf.d/netfence"
printf '%s\n' virtio_pci virtio_blk virtio_net ext4 > "$root/etc/initramfs-tools/modules"
in_root update-initramfs -u -k "$kver" >&2
in_root apt-get clean

# GRUB by hand: core image after the MBR, the boot sector (partition table kept), a fixed config.
mkdir -p "$root/boot/grub"
cp -r /usr/lib/grub/i386-pc "$root/boot/grub/"
cat > "$root/boot/grub/grub.cfg" <<EOF
serial --unit=0 --speed=115200
terminal_output serial console
set timeout=0
linux /boot/vmlinuz-$kver root=/dev/vda1 ro console=ttyS0,115200 net.ifnames=0 quiet
initrd /boot/initrd.img-$kver
boot
EOF
grub-mkimage -O i386-pc -o "$work/core.img" -p '(hd0,msdos1)/boot/grub' biosdisk part_msdos ext2 normal linux
[ "$(stat -c %s "$work/core.img")" -lt $(((PART_START - 1) * 512)) ] || { log "core.img does not fit before the partition"; exit 1; }
dd if=/usr/lib/grub/i386-pc/boot.img of="$disk" bs=440 count=1 conv=notrunc status=none
dd if="$work/core.img" of="$disk" bs=512 seek=1 conv=notrunc status=none

for m in dev/pts dev proc sys; do umount "$root/$m"; done
# Deleted files (the .debs, the pruned modules) would otherwise be copied into the box.
fstrim "$root"
umount "$root"
# Fails if the filesystem is still mounted anywhere; replays nothing on a clean unmount.
e2fsck -fy "$loop" >&2
losetup -d "$loop"
loop=

mkdir -p "$work/box"
qemu-img convert -O qcow2 "$disk" "$work/box/box.img"
rm -f "$disk"
echo "{\"provider\":\"libvirt\",\"format\":\"qcow2\",\"virtual_size\":$(((DISK_MB + 1023) / 1024))}" > "$work/box/metadata.json"
tar -C "$work/box" -cf "$work/$BOX.box" metadata.json box.img
vagrant box add --force --name "$BOX" "$work/$BOX.box" >&2
vagrant box list | awk '$1 ~ /^netfence-bookworm-/ {print $1}' | grep -vx "$BOX" | xargs -r -n1 vagrant box remove -f >&2 || true
log "added $BOX ($(du -m "$work/box/box.img" | cut -f1) MiB image)"
echo "$BOX"
