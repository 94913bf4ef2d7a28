#!/usr/bin/env bash
# The lab: real Debian 12 hosts with systemd as PID 1, run by podman.
#
#   scripts/lab.sh prepare   host packages (podman, runc, debootstrap) and the
#                            podman settings this machine needs (docs/lab.md)
#   scripts/lab.sh image     the Debian 12 base image, built from debootstrap and
#                            imported, with the Debian packages the roles
#                            install already in it (their services disabled);
#                            cached, rebuilt only when its recipe (this file's
#                            image section, the roles' package lists) changes
#   scripts/lab.sh all       both (what `make demo` and `make test` call)
#
# Idempotent: a second run changes nothing and takes a second or two.
set -euo pipefail

image=${MAILSTACK_IMAGE:-localhost/mailstack-debian12:latest}
mirror=${MAILSTACK_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${MAILSTACK_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
suite=bookworm
# Packages every lab host has: systemd and Ansible's Python.
image_packages=systemd,systemd-sysv,dbus,python3,python3-apt,iproute2,ca-certificates,gnupg,procps,less
# Installed with the roles' packages for the lab's own checks: the internet
# host verifies DKIM signatures with dkimpy (a verifier that is not the
# signer) and runs the lab's ACME server (pebble), and it cannot reach the
# mirrors itself.
lab_packages="python3-dkim pebble"

# The Debian packages and debconf answers of the roles, read from the roles
# themselves (roles/*/vars/main.yml: *__packages, *__debconf; role common's
# common_packages). Baked into the image so that a converge does not spend
# minutes in apt; the roles still install them (a no-op here), and a package
# missing from a role's list is missing from the image too.
role_packages() {
  "$root/.venv/bin/python" - "$root/roles" "$1" <<'PYEOF'
import glob, os, re, sys
import yaml
roles, what = sys.argv[1], sys.argv[2]
out = []
for path in sorted(glob.glob(os.path.join(roles, '*', 'vars', 'main.yml'))
                   + [os.path.join(roles, 'common', 'defaults', 'main.yml')]):
    data = yaml.safe_load(open(path)) or {}
    for key, value in sorted(data.items()):
        # tls__packages, tls__acme_packages, ...
        if what == 'packages' and (re.search(r'__(\w+_)?packages$', key) or key == 'common_packages'):
            lines = list(value)
        elif what == 'debconf' and key.endswith('__debconf'):
            lines = ['%(name)s %(question)s %(vtype)s %(value)s' % d for d in value]
        else:
            continue
        for line in lines:
            if '{' in line:
                sys.exit('lab: %s: %s must be literal, not %r' % (path, key, line))
        out.extend(lines)
for line in sorted(set(out)):
    print(line)
PYEOF
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf 'lab: %s\n' "$*"; }
need_root() { [[ $(id -u) -eq 0 ]] || { echo "lab: $1 needs root" >&2; exit 1; }; }

prepare() {
  need_root "preparing the host"
  local missing=()
  # netavark sets up container networks with iptables: without it every
  # container on a lab network fails to start ("netavark: No such file or directory").
  # openssh-client: Ansible reaches the scenarios' hosts over SSH (extensions/molecule/shared/create.yml).
  for pkg in podman runc netavark aardvark-dns iptables debootstrap uidmap slirp4netns openssh-client; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # docs/lab.md: the VM's hard nofile limit is 20000, so podman's default ulimits
  # fail every container; crun cannot handle this cgroup layout, runc can.
  local conf=/etc/containers/containers.conf
  local want
  want=$(cat <<'EOF'
# Written by mailstack scripts/lab.sh (see docs/lab.md).
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
    printf '%s\n' "$image_packages" "$lab_packages" "$mirror" "$security_mirror" "$suite"
    role_packages packages
    role_packages debconf
    declare -f build_image install_role_packages
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
  # The TLS-inspecting gateway of the lab (docs/lab.md): hosts that fetch over
  # HTTPS trust the same local CAs as the machine that built them.
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >/dev/null 2>&1 || true
  fi
  install_role_packages "$rootfs"
  # Containers need neither getty nor udev-driven units.
  chroot "$rootfs" systemctl mask getty@tty1.service serial-getty@console.service \
    systemd-udevd.service systemd-udev-trigger.service systemd-firstboot.service >/dev/null 2>&1 || true
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  # Empty lists must look stale, or apt's cache_valid_time trusts them.
  touch -d @0 "$rootfs/var/lib/apt/lists"
  : >"$rootfs/etc/machine-id"
}

install_role_packages() {
  local rootfs=$1 before after
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  for fs in proc sys dev dev/pts; do mount --bind "/$fs" "$rootfs/$fs"; done
  # No service starts inside the build.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
  before=$(chroot "$rootfs" systemctl list-unit-files --state=enabled --no-legend | awk '{print $1}' | sort)
  role_packages debconf | chroot "$rootfs" debconf-set-selections
  local rc=0
  {
    chroot "$rootfs" apt-get update -qq &&
      { role_packages packages; tr ' ' '\n' <<<"$lab_packages"; } | xargs chroot "$rootfs" env \
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends
  } >>"$rootfs.log" 2>&1 || rc=$?
  # The roles enable what a host runs: nothing runs because it is installed.
  after=$(chroot "$rootfs" systemctl list-unit-files --state=enabled --no-legend | awk '{print $1}' | sort)
  comm -13 <(echo "$before") <(echo "$after") | grep -v '@' \
    | xargs -r chroot "$rootfs" systemctl disable --quiet >>"$rootfs.log" 2>&1 || rc=$?
  # Every host makes its own SSH host keys when sshd first starts.
  rm -f "$rootfs"/etc/ssh/ssh_host_*
  mkdir -p "$rootfs/etc/systemd/system/ssh.service.d"
  printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
    >"$rootfs/etc/systemd/system/ssh.service.d/mailstack-lab-host-keys.conf"
  rm -f "$rootfs/usr/sbin/policy-rc.d"
  unmount_all "$rootfs"
  ((rc == 0)) || { tail -n 30 "$rootfs.log" >&2; return "$rc"; }
}

# Unmounts whatever is mounted under a directory, deepest first.
unmount_all() {
  local dir mnt
  dir=$(realpath "$1")
  awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r mnt; do
    umount "$mnt" || umount -l "$mnt"
  done
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
  # (global: the EXIT trap needs it)
  work=$(mktemp -d /var/tmp/mailstack-rootfs.XXXXXX)
  # Never remove the build directory while the host's /dev, /proc or /sys are
  # bound into it.
  trap 'unmount_all "$work"; rm -rf --one-file-system "$work"' RETURN EXIT
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
