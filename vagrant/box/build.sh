#!/usr/bin/env bash
# `npm run box`: builds sockprobe's Vagrant box for the libvirt provider from Debian's packages alone,
# for machines that cannot download a public box, and adds it to Vagrant as sockprobe/debian12.
# The box is kept in sockprobe's cache and reused while its inputs are unchanged (REBUILD=1 forces).
#
# A Debian 12 root (debootstrap from the machine's own apt source), a `vagrant` user with Vagrant's
# insecure key and password-less sudo, eth0 on DHCP, and this machine's Node (the agent's runtime;
# Debian 12 has only Node 18). No bootloader: the box's Vagrantfile boots its kernel directly.
set -euo pipefail

need() { command -v "$1" >/dev/null || { echo "npm run box: needs $1 (apt-get install -y $2)" >&2; exit 2; }; }
need debootstrap debootstrap
need mkfs.ext4 e2fsprogs
need qemu-img qemu-utils
need vagrant vagrant
[ "$(id -u)" = 0 ] || { echo "npm run box: run it as root (debootstrap and chroot need it)" >&2; exit 2; }

NAME=sockprobe/debian12
CACHE=${SOCKPROBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sockprobe}
OUT=$CACHE/boxes/sockprobe-debian12-libvirt.box
NODE=$(command -v node)
KEY=$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | head -1 || true)
[ -n "$KEY" ] || { echo "npm run box: Vagrant's insecure public key (keys/vagrant.pub) not found" >&2; exit 2; }
# The box changes when this script or the Node it carries does.
STAMP=$( (sha256sum "$0" "$NODE" | cut -d' ' -f1) | sha256sum | cut -c1-16)

# The machine's own Debian source: no mirror is named here.
MIRROR=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1)
[ -n "$MIRROR" ] || MIRROR=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$MIRROR" ] || { echo "npm run box: no Debian source in /etc/apt to debootstrap from" >&2; exit 2; }

if [ -f "$OUT" ] && [ "$(cat "$OUT.stamp" 2>/dev/null)" = "$STAMP" ] && [ -z "${REBUILD:-}" ]; then
  echo "box: $OUT is up to date"
else
  mkdir -p "$(dirname "$OUT")"
  WORK=$(mktemp -d "$CACHE/boxes/.build-XXXXXX")
  cleanup() {
    for m in proc sys dev; do umount -l "$WORK/root/$m" 2>/dev/null || true; done
    rm -rf "$WORK"
  }
  trap cleanup EXIT
  R=$WORK/root
  t0=$(date +%s)
  debootstrap --variant=minbase \
    --include=openssh-server,sudo,ifupdown,iproute2,isc-dhcp-client,systemd-sysv,udev,dbus,linux-image-cloud-amd64,rsync,procps,kmod,libstdc++6,nftables,tcpdump \
    bookworm "$R" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
  echo "box: debootstrap took $(($(date +%s) - t0)) s"
  chroot "$R" useradd -m -s /bin/bash vagrant
  install -d -m 700 -o 1000 -g 1000 "$R/home/vagrant/.ssh"
  install -m 600 -o 1000 -g 1000 "$KEY" "$R/home/vagrant/.ssh/authorized_keys"
  echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >"$R/etc/sudoers.d/vagrant"
  chmod 440 "$R/etc/sudoers.d/vagrant"
  printf 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n' >"$R/etc/network/interfaces"
  printf '/dev/vda / ext4 defaults 0 1\n' >"$R/etc/fstab"
  echo sockprobe >"$R/etc/hostname"
  printf 'UseDNS no\n' >"$R/etc/ssh/sshd_config.d/sockprobe.conf"
  install -m 755 "$NODE" "$R/usr/local/bin/node"
  rm -rf "$R/var/cache/apt/archives/"*.deb "$R/var/lib/apt/lists/"*
  KERNEL=$(ls "$R"/boot/vmlinuz-* | head -1)
  INITRD=$(ls "$R"/boot/initrd.img-* | head -1)
  mkdir "$WORK/box"
  cp "$KERNEL" "$WORK/box/vmlinuz"
  cp "$INITRD" "$WORK/box/initrd.img"
  mkfs.ext4 -q -F -L root -d "$R" "$WORK/root.raw" 3G
  qemu-img convert -c -O qcow2 "$WORK/root.raw" "$WORK/box/box.img"
  printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": 3}\n' >"$WORK/box/metadata.json"
  cat >"$WORK/box/Vagrantfile" <<'EOF'
# sockprobe/debian12: its kernel boots directly, root on the box's disk. QEMU runs as libvirt's own
# user, who may not enter the home folder the box lives in: the kernel and initrd are copied where
# it can read them.
require "fileutils"
boot = File.join(ENV["SOCKPROBE_BOOT_DIR"] || "/var/tmp/sockprobe-boot", File.basename(__dir__.to_s.sub(%r{/libvirt$}, "")))
%w[vmlinuz initrd.img].each do |f|
  dst = File.join(boot, f)
  next if File.exist?(dst) && File.size(dst) == File.size(File.expand_path(f, __dir__))
  FileUtils.mkdir_p(boot, mode: 0o755)
  FileUtils.cp(File.expand_path(f, __dir__), dst)
  File.chmod(0o644, dst)
end
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |libvirt|
    libvirt.kernel = File.join(boot, "vmlinuz")
    libvirt.initrd = File.join(boot, "initrd.img")
    libvirt.cmd_line = "root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=-1"
  end
end
EOF
  tar -C "$WORK/box" -czf "$OUT.tmp" metadata.json Vagrantfile box.img vmlinuz initrd.img
  mv "$OUT.tmp" "$OUT"
  echo "$STAMP" >"$OUT.stamp"
  echo "box: built $OUT ($(du -h "$OUT" | cut -f1)) in $(($(date +%s) - t0)) s"
fi

if vagrant box list 2>/dev/null | grep -q "^$NAME .*libvirt" && [ "$(cat "$OUT.added" 2>/dev/null)" = "$STAMP" ]; then
  echo "box: $NAME is in Vagrant"
else
  vagrant box add --force --name "$NAME" "$OUT" >/dev/null
  echo "$STAMP" >"$OUT.added"
  echo "box: added $NAME to Vagrant"
fi
