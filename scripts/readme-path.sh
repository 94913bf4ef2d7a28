#!/usr/bin/env bash
# The README's "Using the collection" commands, run as they stand (make test).
#
#   scripts/readme-path.sh install
#       Runs the README block marked `readme-path: install` on a controller
#       that has nothing of scripts/setup.sh: a new, empty home
#       (.cache/readme/home, so the README's `~` is there and
#       ~/.ansible/collections starts empty), a site directory
#       (.cache/readme/site) holding the collection's tarball, and an
#       environment without .venv, without any Ansible on the PATH and without
#       ANSIBLE_* or MOLECULE_* variables. The tarball is
#       build/mailops-mailstack-VERSION.tar.gz, made here by the README's
#       command (`ansible-galaxy collection build --force --output-path
#       build/`, so it matches the checkout; the lint stage builds its own in
#       build/lint/). Always starts afresh; pip's downloads
#       are cached in .cache/pip, so a warm machine does it in about 25 s.
#   scripts/readme-path.sh run SCENARIO
#       Runs the block marked `readme-path: run` in that site directory, its
#       inventory/hosts.yml being the converged Molecule scenario's inventory
#       (.cache/molecule/SCENARIO/inventory). Installs first when what is
#       installed is not the current tarball. The scenario being converged,
#       the run must succeed on every host and change nothing.
#   scripts/readme-path.sh collections DEST
#       Copies what the install gave Ansible into DEST/ansible_collections:
#       mailops.mailstack and the collections its galaxy.yml depends on, from
#       where the README's venv finds them (scripts/ee.sh build puts these in
#       the execution environment, so an AWX job runs the same collections).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
work=$root/.cache/readme
home=$work/home
site=$work/site
tools=$root/.venv/bin

log() { printf 'readme-path: %s\n' "$*"; }
die() { printf 'readme-path: %s\n' "$*" >&2; exit 1; }

# The lint stage's tarball, rebuilt by the lint stage's command (one second).
tarball() {
  "$tools/ansible-galaxy" collection build --force --output-path build/ >/dev/null
  local version
  version=$("$tools/python" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["version"])' galaxy.yml)
  [[ -f build/mailops-mailstack-$version.tar.gz ]] || die "no build/mailops-mailstack-$version.tar.gz after the build"
  echo "$root/build/mailops-mailstack-$version.tar.gz"
}

# What a tarball holds (its file list with checksums), to tell whether the
# install is current.
tarball_id() { tar -xzOf "$1" FILES.json | sha256sum | cut -c1-16; }

# Runs the README block NAME in the site directory, in the user's environment:
# HOME moved to the empty home, no .venv or other Ansible on the PATH, no
# Ansible or Molecule variables (the rest, such as the CA settings pip needs,
# is kept).
run_block() {
  local name=$1 block path="" dir var dirs unset=()
  block=$("$tools/python" scripts/readme_blocks.py README.md "$name") || exit 1
  IFS=: read -ra dirs <<<"$PATH"
  for dir in "${dirs[@]}"; do
    [[ -x $dir/ansible-playbook || -x $dir/ansible-galaxy || -x $dir/molecule ]] || path+=${path:+:}$dir
  done
  for var in $(compgen -e); do
    [[ $var == ANSIBLE_* || $var == MOLECULE_* ]] && unset+=(-u "$var")
  done
  (cd "$site" && env "${unset[@]}" -u VIRTUAL_ENV -u PYTHONPATH -u PYTHONHOME \
    HOME="$home" PATH="$path" PIP_CACHE_DIR="$root/.cache/pip" PIP_DISABLE_PIP_VERSION_CHECK=1 \
    bash -euo pipefail -c "$block")
}

install() {
  local tb start=$SECONDS
  tb=$(tarball)
  rm -rf "$work"
  mkdir -p "$home" "$site"
  cp "$tb" "$site/"
  log "running the README's install block (fresh venv, empty collections path) in $site"
  if ! run_block install >"$work/install.log" 2>&1; then
    tail -n 30 "$work/install.log" >&2
    die "the README's install commands failed (whole output: $work/install.log)"
  fi
  # pip's "Location ... is ignored" lines come from this machine's pip.conf.
  grep -v "^WARNING: Location" "$work/install.log" | grep -E "installed successfully|already installed|^Successfully" || true
  tarball_id "$tb" >"$work/installed"
  log "installed in $((SECONDS - start)) s"
}

# The venv the README's block made (the path it names after `python3 -m venv`).
readme_venv() {
  local v
  v=$("$tools/python" scripts/readme_blocks.py README.md install | sed -n 's/^python3 -m venv \([^ ]*\).*/\1/p' | head -n 1)
  [[ -n $v ]] || die "the README's install block makes no venv (python3 -m venv PATH)"
  echo "${v/#\~/$home}"
}

run() {
  local scenario=${1:?usage: scripts/readme-path.sh run SCENARIO} tb start
  local state=$root/.cache/molecule/$scenario
  [[ -f $state/inventory/ansible_inventory.yml ]] \
    || die "scenario $scenario is not converged (no $state/inventory): run its Molecule converge first"
  tb=$(tarball)
  if [[ ! -f $work/installed || $(cat "$work/installed") != "$(tarball_id "$tb")" ]]; then
    install
  fi
  start=$SECONDS
  # inventory/hosts.yml, as the README names it: the scenario's inventory
  # file, with its group_vars and host_vars beside it.
  rm -rf "$site/inventory"
  mkdir -p "$site/inventory"
  ln -s "$state/inventory/ansible_inventory.yml" "$site/inventory/hosts.yml"
  for dir in group_vars host_vars; do
    [[ -d $state/inventory/$dir ]] && ln -s "$state/inventory/$dir" "$site/inventory/$dir"
  done
  log "running the README's run block against scenario $scenario"
  local rc=0
  run_block run >"$work/run-$scenario.log" 2>&1 || rc=$?
  # The scenario is converged: every host ok, none changed.
  python3 - "$work/run-$scenario.log" "$rc" "$((SECONDS - start))" <<'EOF' || rc=1
import re, sys
text = open(sys.argv[1]).read()
recap = dict(re.findall(r'^(\S+)\s+:\s+(ok=\d+.*)$', text.split('PLAY RECAP')[-1], re.M)) if 'PLAY RECAP' in text else {}
stats = {h: dict((k, int(v)) for k, v in re.findall(r'(\w+)=(\d+)', s)) for h, s in recap.items()}
print(f"readme-path: run rc {sys.argv[2]}, {sys.argv[3]} s")
for host, s in sorted(stats.items()):
    print(f"readme-path:   {host}: " + " ".join(f"{k}={s.get(k, 0)}" for k in ("ok", "changed", "failed", "unreachable", "skipped")))
bad = sys.argv[2] != "0" or not stats or any(s.get("failed") or s.get("unreachable") or s.get("changed") for s in stats.values())
sys.exit(1 if bad else 0)
EOF
  if ((rc != 0)); then
    tail -n 40 "$work/run-$scenario.log" >&2
    die "the README's run command failed or changed a converged host (whole output: $work/run-$scenario.log)"
  fi
}

collections() {
  local dest=${1:?usage: scripts/readme-path.sh collections DEST} venv
  [[ -f $work/installed ]] || die "nothing installed: run scripts/readme-path.sh install first"
  venv=$(readme_venv)
  rm -rf "$dest"
  mkdir -p "$dest/ansible_collections"
  # Where the README's Ansible finds each collection (its own search order).
  # (in the site directory: the checkout's ansible.cfg would add .cache/collections)
  (cd "$site" && env -u ANSIBLE_COLLECTIONS_PATH -u ANSIBLE_CONFIG HOME="$home" \
    "$venv/bin/ansible-galaxy" collection list --format json 2>/dev/null >"$work/collections.json")
  "$tools/python" - "$work/collections.json" galaxy.yml "$dest" <<'EOF'
import json, shutil, sys
from pathlib import Path
import yaml
found = json.load(open(sys.argv[1]))
wanted = ["mailops.mailstack", *yaml.safe_load(open(sys.argv[2]))["dependencies"]]
dest = Path(sys.argv[3]) / "ansible_collections"
for name in wanted:
    paths = [p for p, colls in found.items() if name in colls]
    if not paths:
        sys.exit(f"readme-path: {name} is not where the README's install put the collections")
    ns, coll = name.split(".")
    shutil.copytree(Path(paths[0]) / ns / coll, dest / ns / coll, symlinks=True)
    print(f"readme-path: {name} {found[paths[0]][name]['version']} from {paths[0]}")
EOF
}

case ${1:-} in
  install) install ;;
  run) shift; run "$@" ;;
  collections) shift; collections "$@" ;;
  *) echo "usage: $0 install | run SCENARIO | collections DEST" >&2; exit 2 ;;
esac
