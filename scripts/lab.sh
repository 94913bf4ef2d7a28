#!/usr/bin/env bash
# The lab: real Debian 12 hosts with systemd as PID 1, run by podman.
#
#   scripts/lab.sh prepare   host packages (podman, runc, debootstrap) and the
#                            podman settings this machine needs (LAB.md)
#   scripts/lab.sh image     the Debian 12 base image, built from debootstrap and
#                            imported; cached, rebuilt only when its recipe
#                            (this file's image section) changes
#   scripts/lab.sh all       both (what `make demo` and `make test` call)
#
# Idempotent: a second run changes nothing and takes a second or two.
set -euo pipefail

image=${MAILSTACK_IMAGE:-localhost/mailstack-debian12:latest}
mirror=${MAILSTACK_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${MAILSTACK_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
suite=bookworm
# Packages every lab host has. The roles still install what they need: this
# list only saves converge time and gives Ansible its Python.
image_packages=systemd,systemd-sysv,dbus,python3,python3-apt,iproute2,ca-certificates,gnupg,procps,less

log() { printf 'lab: %s\n' "$*"; }
need_root() { [[ $(id -u) -eq 0 ]] || { echo "lab: $1 needs root" >&2; exit 1; }; }

prepare() {
  need_root "preparing the host"
  local missing=()
  # netavark sets up container networks with iptables: without it every
  # container on a lab network fails to start ("netavark: No such file or directory").
  for pkg in podman runc netavark aardvark-dns iptables debootstrap uidmap slirp4netns; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # LAB.md: the VM's hard nofile limit is 20000, so podman's default ulimits
  # fail every container; crun cannot handle this cgroup layout, runc can.
  local conf=/etc/containers/containers.conf
  local want
  want=$(cat <<'EOF'
# Written by mailstack scripts/lab.sh (see LAB.md).
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]

[engine]
runtime = "runc"
EOF
)
  if [[ ! -f $conf ]] || [[ $(cat "$conf") != "$want" ]]; then
    if [[ -f $conf ]] && ! grep -q 'Written by mailstack' "$conf"; then
      cp -a "$conf" "$conf.mailstack-backup"
      log "kept the previous $conf as $conf.mailstack-backup"
    fi
    mkdir -p /etc/containers
    printf '%s\n' "$want" >"$conf"
    log "wrote $conf (ulimits 20000, runtime runc)"
  fi
}

recipe_hash() {
  # Everything that shapes the image: the package list, mirrors, suite, the
  # build function below and the CA certificates copied in.
  {
    printf '%s\n' "$image_packages" "$mirror" "$security_mirror" "$suite"
    declare -f build_image
    cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true
  } | sha256sum | cut -c1-16
}

build_image() {
  local rootfs=$1
  debootstrap --variant=minbase --include="$image_packages" "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
    || { tail -n 20 "$rootfs.log" >&2; return 1; }
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main
EOF
  # The TLS-inspecting gateway of the lab (LAB.md): hosts that fetch over
  # HTTPS trust the same local CAs as the machine that built them.
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >/dev/null 2>&1 || true
  fi
  # Containers need neither getty nor udev-driven units.
  chroot "$rootfs" systemctl mask getty@tty1.service serial-getty@console.service \
    systemd-udevd.service systemd-udev-trigger.service systemd-firstboot.service >/dev/null 2>&1 || true
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  # Empty lists must look stale, or apt's cache_valid_time trusts them.
  touch -d @0 "$rootfs/var/lib/apt/lists"
  : >"$rootfs/etc/machine-id"
}

image() {
  need_root "building the base image"
  command -v podman >/dev/null || { echo "lab: podman missing: run 'scripts/lab.sh prepare' first" >&2; exit 1; }
  local want have
  want=$(recipe_hash)
  have=$(podman image inspect --format '{{index .Config.Labels "mailstack.recipe"}}' "$image" 2>/dev/null || true)
  if [[ $have == "$want" ]]; then
    log "base image $image is current (recipe $want)"
    return 0
  fi
  log "building base image $image (recipe $want) with debootstrap"
  local work
  work=$(mktemp -d /var/tmp/mailstack-rootfs.XXXXXX)
  trap 'rm -rf "$work"' RETURN
  build_image "$work/rootfs"
  tar -C "$work/rootfs" -c . | podman import -q \
    --change 'CMD ["/sbin/init"]' \
    --change 'STOPSIGNAL SIGRTMIN+3' \
    --change "LABEL mailstack.recipe=$want" \
    - "$image" >/dev/null
  log "imported $image ($(podman image inspect --format '{{.Size}}' "$image" | awk '{printf "%d MB", $1/1e6}'))"
}

case ${1:-all} in
  prepare) prepare ;;
  image) image ;;
  all) prepare; image ;;
  *) echo "usage: $0 [prepare|image|all]" >&2; exit 2 ;;
esac
