#!/usr/bin/env bash
# libvirtd in a network namespace of sockprobe's own, for machines without a libvirt of their own
# (CI here, where there is no systemd either). The networks Vagrant asks libvirt for (bridges,
# dnsmasq, the guests' taps) then live in that namespace and never in the machine's own, and the
# guests' addresses are reachable only from inside it: run vagrant there (`exec`). sockprobe's
# vagrant backend finds the namespace by its name and runs vagrant and ssh in it too.
#
#   vagrant/libvirt-netns.sh start             virtlogd and libvirtd in the namespace, a storage pool
#   vagrant/libvirt-netns.sh exec CMD...       CMD in the namespace (vagrant up, vagrant destroy -f)
#   vagrant/libvirt-netns.sh stop              every domain, network, volume and pool of ours gone,
#                                              the daemons stopped, the namespace deleted
#   vagrant/libvirt-netns.sh leftovers         what of ours remains (nothing, after stop)
set -euo pipefail

NS=sockprobe-libvirt
POOL=sockprobe
# Outside any home folder: QEMU runs as libvirt's own user and must reach the volumes.
POOL_DIR=/var/lib/sockprobe/libvirt-pool
VIRSH=(virsh -q -c qemu:///system)
PIDS=/run/sockprobe-libvirt

in_ns() { nsenter --net="/run/netns/$NS" -- "$@"; }

start() {
  command -v libvirtd >/dev/null || { echo "libvirt-netns: needs libvirtd (apt-get install -y libvirt-daemon-system)" >&2; exit 2; }
  [ -e "/run/netns/$NS" ] || ip netns add "$NS"
  ip -n "$NS" link set lo up
  mkdir -p "$PIDS"
  # `ip netns exec` gives the daemons a /sys of the namespace, where libvirt looks for its bridges.
  if ! pgrep -F "$PIDS/virtlogd.pid" >/dev/null 2>&1; then
    ip netns exec "$NS" virtlogd -d -p "$PIDS/virtlogd.pid"
  fi
  if ! pgrep -F "$PIDS/libvirtd.pid" >/dev/null 2>&1; then
    ip netns exec "$NS" libvirtd -d -p "$PIDS/libvirtd.pid"
  fi
  for _ in $(seq 1 100); do "${VIRSH[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
  "${VIRSH[@]}" version >/dev/null
  forget_ours
  if ! "${VIRSH[@]}" pool-info "$POOL" >/dev/null 2>&1; then
    mkdir -p "$POOL_DIR"
    "${VIRSH[@]}" pool-define-as "$POOL" dir --target "$POOL_DIR" >/dev/null
  fi
  "${VIRSH[@]}" pool-start "$POOL" >/dev/null 2>&1 || true
  echo "libvirt-netns: libvirtd runs in namespace $NS; pool $POOL at $POOL_DIR"
}

ours_domains() { "${VIRSH[@]}" list --all --name 2>/dev/null | grep '^sockprobe_' || true; }
ours_networks() { "${VIRSH[@]}" net-list --all --name 2>/dev/null | grep '^sockprobe-' || true; }

# Domains and networks of ours, from a run that was interrupted before its stop.
forget_ours() {
    for d in $(ours_domains); do
      "${VIRSH[@]}" destroy "$d" >/dev/null 2>&1 || true
      "${VIRSH[@]}" undefine "$d" --remove-all-storage --nvram >/dev/null 2>&1 || "${VIRSH[@]}" undefine "$d" >/dev/null 2>&1 || true
    done
    for n in $(ours_networks); do
      "${VIRSH[@]}" net-destroy "$n" >/dev/null 2>&1 || true
      "${VIRSH[@]}" net-undefine "$n" >/dev/null 2>&1 || true
    done
}

stop() {
  if "${VIRSH[@]}" version >/dev/null 2>&1; then
    forget_ours
    # vagrant destroy keeps the base box's volume and the pool on purpose: they go here.
    if "${VIRSH[@]}" pool-info "$POOL" >/dev/null 2>&1; then
      for v in $("${VIRSH[@]}" vol-list "$POOL" 2>/dev/null | awk '{print $1}'); do
        "${VIRSH[@]}" vol-delete "$v" --pool "$POOL" >/dev/null 2>&1 || true
      done
      "${VIRSH[@]}" pool-destroy "$POOL" >/dev/null 2>&1 || true
      "${VIRSH[@]}" pool-undefine "$POOL" >/dev/null 2>&1 || true
    fi
  fi
  for d in libvirtd virtlogd; do
    if [ -f "$PIDS/$d.pid" ]; then
      # The daemon may remove its pid file before it has exited: wait on the process itself.
      pid=$(cat "$PIDS/$d.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$PIDS/$d.pid"
    fi
  done
  rmdir "$PIDS" 2>/dev/null || true
  [ -e "/run/netns/$NS" ] && ip netns del "$NS"
  rm -rf "$POOL_DIR" /var/tmp/sockprobe-boot
  rmdir /var/lib/sockprobe 2>/dev/null || true
  echo "libvirt-netns: stopped; namespace $NS deleted"
}

leftovers() {
  local left=()
  [ -e "/run/netns/$NS" ] && left+=("namespace $NS")
  for d in libvirtd virtlogd; do pgrep -x "$d" >/dev/null && left+=("process $d"); done
  pgrep -f 'qemu-system.*sockprobe_' >/dev/null && left+=("a QEMU of ours")
  ip -o link show | grep -q 'sockprobe\|virbr' && left+=("a link in the machine's own namespace")
  [ -d "$POOL_DIR" ] && left+=("pool directory $POOL_DIR")
  if [ ${#left[@]} -gt 0 ]; then
    printf 'libvirt-netns: left behind: %s\n' "${left[@]}" >&2
    exit 1
  fi
  echo "libvirt-netns: nothing of ours remains"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  exec) shift; in_ns "$@" ;;
  leftovers) leftovers ;;
  *) echo "usage: $0 start|exec CMD...|stop|leftovers" >&2; exit 2 ;;
esac
