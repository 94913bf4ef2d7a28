#!/usr/bin/env bash
# The lab: real Debian 12 hosts with systemd as PID 1, run by podman.
#
#   scripts/lab.sh prepare   host packages (podman, runc, debootstrap) and the
#                            podman settings this machine needs (docs/lab.md)
#   scripts/lab.sh image     the Debian 12 base image, built from debootstrap and
#                            imported: a bare Debian system (systemd, Python,
#                            SSH) on which the roles install what they need
#                            through apt, from a package repository inside the
#                            image that holds the roles' packages (so a converge
#                            needs no mirror); cached, rebuilt only when its
#                            recipe (this file's image section, the roles'
#                            package lists) changes
#   scripts/lab.sh vm-image  the virtual machines' disk, kernel and initrd
#                            (the NFS topology: containers cannot mount NFS on
#                            this kernel), made from the base image; cached in
#                            /var/lib/mailstack/vm, rebuilt only when the base
#                            image or this file's VM section changes
#   scripts/lab.sh all       all three (what `make test` calls; `make demo` calls
#                            prepare and image: the demo needs no VM)
#
# Idempotent: a second run changes nothing and takes a second or two.
set -euo pipefail

image=${MAILSTACK_IMAGE:-localhost/mailstack-debian12:latest}
mirror=${MAILSTACK_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${MAILSTACK_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
suite=bookworm
# What every lab host has installed: what a freshly installed Debian 12
# server has that Ansible needs (systemd, Python 3, SSH, iproute2), and not
# one package more: not even python3-apt (Ansible's apt module installs it).
# Each role installs the rest through apt, as on a bare host, so a package
# missing from a role's list is missing on the host that runs the role.
image_packages=systemd,systemd-sysv,dbus,python3,iproute2,ca-certificates,openssh-server
# In the lab repository too, for the lab's own hosts (extensions/molecule/shared):
# the internet host's Postfix, its DKIM verifier (dkimpy: a verifier that is not
# the signer) and the lab's ACME server (pebble, its keys by community.crypto).
lab_packages="postfix python3-dkim pebble python3-cryptography python3-apt"
# The lab repository: every package the roles and the lab install, with their
# dependencies, and the APT settings that prefer it to the mirror. Hosts that
# resolve through the lab's DNS cannot reach the mirror (the lab's BIND does
# not recurse), and a newer package on the mirror must not make a converge
# download: the repository's versions win. The mirror stays in sources.list,
# as on a real host.
lab_repo=/var/lib/mailstack-lab/debs

# The Debian packages and debconf answers of the roles, read from the roles
# themselves (roles/*/vars/main.yml: *__packages, *__debconf; role common's
# common_packages). The container image's repository holds the packages; the
# debconf answers are the roles' own to give (the VM image installs both).
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
  # qemu-system-x86, qemu-utils: the NFS topology's virtual machines (software
  # emulation: this machine's /dev/kvm cannot run a Debian kernel, docs/lab.md).
  # apt-utils: apt-ftparchive indexes the image's package repository.
  for pkg in podman runc netavark aardvark-dns iptables debootstrap uidmap slirp4netns openssh-client \
    qemu-system-x86 qemu-utils apt-utils; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
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
    declare -f build_image lab_repository host_keys_per_host
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
  lab_repository "$rootfs"
  host_keys_per_host "$rootfs"
  # Containers need neither getty nor udev-driven units.
  chroot "$rootfs" systemctl mask getty@tty1.service serial-getty@console.service \
    systemd-udevd.service systemd-udev-trigger.service systemd-firstboot.service >/dev/null 2>&1 || true
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin
  # The lists look stale, as on a host installed a while ago: the roles'
  # apt tasks (cache_valid_time) refresh them.
  find "$rootfs/var/lib/apt/lists" -exec touch -h -d @0 {} +
  : >"$rootfs/etc/machine-id"
}

# The lab repository (lab_repo above) in the image: the roles' and the lab's
# packages with every dependency the bare system lacks, downloaded from the
# mirror, indexed (apt-ftparchive, on this machine) and pinned above the mirror.
lab_repository() {
  local rootfs=$1 rc=0
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  # All together, then each alone: a host with one role resolves an
  # alternative dependency (opendmarc's default-mysql-client | virtual-mysql-client)
  # to its first choice, which the packages together do not need.
  local pkg
  {
    chroot "$rootfs" apt-get update -qq &&
      { role_packages packages; tr ' ' '\n' <<<"$lab_packages"; } | xargs chroot "$rootfs" env \
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends --download-only &&
      for pkg in $(role_packages packages) $lab_packages; do
        chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive \
          apt-get install -y -q --no-install-recommends --download-only "$pkg" || exit 1
      done
  } >>"$rootfs.log" 2>&1 || rc=$?
  ((rc == 0)) || { tail -n 30 "$rootfs.log" >&2; return "$rc"; }
  mkdir -p "$rootfs$lab_repo"
  mv "$rootfs"/var/cache/apt/archives/*.deb "$rootfs$lab_repo/"
  (cd "$rootfs$lab_repo" && apt-ftparchive packages . >Packages) 2>>"$rootfs.log"
  # First in sources.list: of two sources with the same version apt fetches
  # from the first listed (else from the mirror, which hosts that resolve
  # through the lab's DNS cannot reach).
  sed -i "1i deb [trusted=yes] file:$lab_repo ./" "$rootfs/etc/apt/sources.list"
  printf 'Package: *\nPin: origin ""\nPin-Priority: 990\n' >"$rootfs/etc/apt/preferences.d/mailstack-lab"
  chroot "$rootfs" apt-get update -qq >>"$rootfs.log" 2>&1
}

# Every host makes its own SSH host keys when sshd first starts, and its own
# iSCSI initiator name when iscsid first starts (open-iscsi's
# startup-checks.sh): a name copied from the image would be every host's.
host_keys_per_host() {
  local rootfs=$1
  rm -f "$rootfs"/etc/ssh/ssh_host_*
  if [[ -f $rootfs/etc/iscsi/initiatorname.iscsi ]]; then
    echo GenerateName=yes >"$rootfs/etc/iscsi/initiatorname.iscsi"
  fi
  mkdir -p "$rootfs/etc/systemd/system/ssh.service.d"
  printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
    >"$rootfs/etc/systemd/system/ssh.service.d/mailstack-lab-host-keys.conf"
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
      role_packages packages | xargs chroot "$rootfs" env \
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends
  } >>"$rootfs.log" 2>&1 || rc=$?
  # The roles enable what a host runs: nothing runs because it is installed.
  after=$(chroot "$rootfs" systemctl list-unit-files --state=enabled --no-legend | awk '{print $1}' | sort)
  comm -13 <(echo "$before") <(echo "$after") | grep -v '@' \
    | xargs -r chroot "$rootfs" systemctl disable --quiet >>"$rootfs.log" 2>&1 || rc=$?
  host_keys_per_host "$rootfs"
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

# --- Virtual machines -------------------------------------------------------
# The base image's root file system plus a kernel, as a raw ext4 disk that
# QEMU boots directly (-kernel/-initrd, root=/dev/vda): no boot loader, no
# cloud-init. A VM learns its name, address and the scenario's SSH key from
# the kernel command line (mailstack-vm-seed below), so the disk holds no
# secret and one disk serves every VM through copy-on-write overlays.
vm_dir=${MAILSTACK_VM_DIR:-/var/lib/mailstack/vm}
vm_packages="linux-image-cloud-amd64 initramfs-tools udev openssh-server systemd-timesyncd"

vm_seed_script() {
  cat <<'SEED'
#!/bin/sh
# mailstack-vm-seed: this VM's network and root's SSH key, from the kernel
# command line (mailstack.ip=ADDR/LEN mailstack.gw= mailstack.dns=
# mailstack.mtu= mailstack.key=BASE64 of an authorized_keys line).
set -eu
ip= gw= dns= mtu=1500 key=
for arg in $(cat /proc/cmdline); do
  case $arg in
    mailstack.ip=*) ip=${arg#*=} ;;
    mailstack.gw=*) gw=${arg#*=} ;;
    mailstack.dns=*) dns=${arg#*=} ;;
    mailstack.mtu=*) mtu=${arg#*=} ;;
    mailstack.key=*) key=${arg#*=} ;;
  esac
done
mkdir -p /run/systemd/network
{
  printf '[Match]\nType=ether\n\n[Link]\nMTUBytes=%s\n\n[Network]\n' "$mtu"
  if [ -n "$ip" ]; then printf 'Address=%s\n' "$ip"; else printf 'DHCP=yes\n'; fi
  [ -z "$gw" ] || printf 'Gateway=%s\n' "$gw"
  [ -z "$dns" ] || printf 'DNS=%s\n' "$dns"
} >/run/systemd/network/10-mailstack.network
[ -z "$dns" ] || printf 'nameserver %s\n' "$dns" >/etc/resolv.conf
if [ -n "$key" ]; then
  mkdir -p -m 0700 /root/.ssh
  printf '%s' "$key" | base64 -d >/root/.ssh/authorized_keys
  chmod 0600 /root/.ssh/authorized_keys
fi
SEED
}

vm_recipe_hash() {
  {
    podman image inspect --format '{{index .Config.Labels "mailstack.recipe"}}' "$image"
    printf '%s\n' "$vm_packages" "$mirror"
    declare -f build_vm_image vm_seed_script install_role_packages host_keys_per_host
  } | sha256sum | cut -c1-16
}

build_vm_image() {
  local work=$1 out=$2 rootfs=$1/rootfs container
  mkdir -p "$rootfs"
  container=$(podman create -q "$image" /sbin/init)
  podman export "$container" | tar -x -C "$rootfs"
  podman rm -f "$container" >/dev/null
  # The VMs boot with the roles' packages installed (services disabled):
  # installing them on each VM under software emulation would take most of a
  # converge. The containers' scenarios prove the roles install what they need.
  install_role_packages "$rootfs"
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  for fs in proc sys dev dev/pts; do mount --bind "/$fs" "$rootfs/$fs"; done
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
  local rc=0
  # shellcheck disable=SC2086 # the package names are words
  {
    chroot "$rootfs" apt-get update -qq &&
      chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends $vm_packages
  } >"$work/vm.log" 2>&1 || rc=$?
  rm -f "$rootfs/usr/sbin/policy-rc.d"
  unmount_all "$rootfs"
  ((rc == 0)) || { tail -n 30 "$work/vm.log" >&2; return "$rc"; }
  # A VM, unlike a container, needs udev (virtio disks and network cards) and
  # a console; the base image masked them.
  chroot "$rootfs" systemctl unmask systemd-udevd.service systemd-udev-trigger.service \
    serial-getty@console.service >/dev/null 2>&1
  # e2scrub checks LVM snapshots, which the VMs have none of; its boot-time
  # reaper took 3 minutes of emulated CPU with three VMs booting.
  chroot "$rootfs" systemctl mask e2scrub_reap.service e2scrub_all.timer >/dev/null 2>&1
  vm_seed_script >"$rootfs/usr/local/sbin/mailstack-vm-seed"
  chmod 0755 "$rootfs/usr/local/sbin/mailstack-vm-seed"
  cat >"$rootfs/etc/systemd/system/mailstack-vm-seed.service" <<'UNIT'
[Unit]
Description=mailstack: this VM's address and SSH key from the kernel command line
DefaultDependencies=no
After=local-fs.target
Before=network-pre.target systemd-networkd.service ssh.service
Wants=network-pre.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/mailstack-vm-seed
RemainAfterExit=yes

[Install]
WantedBy=sysinit.target
UNIT
  chroot "$rootfs" systemctl enable --quiet mailstack-vm-seed.service systemd-networkd.service \
    ssh.service systemd-timesyncd.service
  printf '/dev/vda / ext4 errors=remount-ro,noatime 0 1\n' >"$rootfs/etc/fstab"
  : >"$rootfs/etc/machine-id"
  rm -f "$rootfs/etc/hostname"
  # The package lists stay, with the time of this build: a converge within
  # the hour (apt's cache_valid_time) does not spend a minute or more of
  # emulated CPU per VM updating them again.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb
  mkdir -p "$out"
  # The newest kernel and its initrd (globs sort by version here).
  local kernels=("$rootfs"/boot/vmlinuz-*) initrds=("$rootfs"/boot/initrd.img-*)
  cp "${kernels[-1]}" "$out/vmlinuz"
  cp "${initrds[-1]}" "$out/initrd.img"
  mkfs.ext4 -q -F -L mailstack-root -d "$rootfs" "$out/base.raw" 6G
}

vm_image() {
  need_root "building the VM image"
  command -v qemu-system-x86_64 >/dev/null || { echo "lab: qemu missing: run 'scripts/lab.sh prepare' first" >&2; exit 1; }
  local want
  want=$(vm_recipe_hash)
  if [[ -f $vm_dir/$want/base.raw ]]; then
    ln -sfn "$want" "$vm_dir/current"
    log "VM image $vm_dir/$want is current"
    return 0
  fi
  log "building VM image $vm_dir/$want from $image"
  mkdir -p "$vm_dir"
  work=$(mktemp -d /var/tmp/mailstack-vmroot.XXXXXX)
  trap 'unmount_all "$work"; rm -rf --one-file-system "$work"' RETURN EXIT
  build_vm_image "$work" "$work/out"
  rm -rf "${vm_dir:?}/$want"
  mv "$work/out" "$vm_dir/$want"
  ln -sfn "$want" "$vm_dir/current"
  # Older recipes' disks (about 1.5 GB each) go.
  find "$vm_dir" -mindepth 1 -maxdepth 1 -type d ! -name "$want" -exec rm -rf {} +
  log "VM image $vm_dir/$want ($(du -sh "$vm_dir/$want" | cut -f1) on disk)"
}

case ${1:-all} in
  prepare) prepare ;;
  image) image ;;
  vm-image) vm_image ;;
  all) prepare; image; vm_image ;;
  *) echo "usage: $0 [prepare|image|vm-image|all]" >&2; exit 2 ;;
esac
