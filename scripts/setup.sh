#!/usr/bin/env bash
# Controller set-up, shared by `make demo` and `make test`.
#
#  * .venv: a virtual environment on Debian's Python with the pinned tools of
#    requirements.txt;
#  * .cache/collections: the collection dependencies of requirements.yml (and
#    awx/requirements.yml, for the AWX import playbook), from Galaxy; where
#    Galaxy cannot be reached, from PyPI's `ansible` package (which bundles
#    them), and it says so;
#  * mailops.mailstack itself linked into that collections path, so playbooks,
#    Molecule and ansible-test find this checkout as the collection.
#
# Idempotent: a stamp records the hash of the inputs; a second run with nothing
# changed checks the stamp and returns in about a second.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

venv=$root/.venv
coll=$root/.cache/collections
stamp=$venv/.mailstack-setup
# PyPI's `ansible` release whose bundled collections satisfy requirements.yml on
# ansible-core 2.19 (ansible 12.x pairs with ansible-core 2.19).
ansible_bundle=${MAILSTACK_ANSIBLE_BUNDLE:-12.3.0}
python=${MAILSTACK_PYTHON:-/usr/bin/python3}

log() { printf 'setup: %s\n' "$*"; }

reqfiles=(requirements.yml awx/requirements.yml)
want=$(cat requirements.txt "${reqfiles[@]}" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" && -L $coll/ansible_collections/mailops/mailstack ]]; then
  log "up to date (.venv and .cache/collections match requirements.txt and requirements.yml)"
  exit 0
fi

# Debian's python3 has no venv module until python3-venv is installed.
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: $python has no venv/ensurepip; install python3-venv (as root: apt-get install python3-venv)" >&2
    exit 1
  fi
  log "installing python3-venv"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi

if [[ ! -x $venv/bin/python ]]; then
  log "creating $venv"
  "$python" -m venv "$venv"
fi
log "installing requirements.txt into .venv"
"$venv/bin/pip" install --disable-pip-version-check -q --upgrade pip 2> >(grep -v '^WARNING: Location' >&2)
"$venv/bin/pip" install --disable-pip-version-check -q -r requirements.txt 2> >(grep -v '^WARNING: Location' >&2)

mkdir -p "$coll/ansible_collections"
log "installing collection dependencies from Galaxy (requirements.yml)"
galaxy_ok=true
for reqfile in "${reqfiles[@]}"; do
  timeout 120 "$venv/bin/ansible-galaxy" collection install --force -r "$reqfile" -p "$coll" \
    >"$root/.cache/galaxy.log" 2>&1 || { galaxy_ok=false; break; }
done
if $galaxy_ok; then
  log "collections installed from Galaxy"
else
  log "Galaxy cannot be reached ($(grep -v "^\s*$" "$root/.cache/galaxy.log" | tail -n 1)):"
  log "taking the collections from PyPI's ansible==$ansible_bundle package instead"
  dl=$root/.cache/pypi-ansible
  mkdir -p "$dl"
  wheel=$dl/ansible-$ansible_bundle-py3-none-any.whl
  if [[ ! -f $wheel ]]; then
    "$venv/bin/pip" download --disable-pip-version-check -q --no-deps -d "$dl" "ansible==$ansible_bundle" \
      2> >(grep -v '^WARNING: Location' >&2)
  fi
  "$venv/bin/python" - "$wheel" "$coll" "${reqfiles[@]}" <<'EOF'
import json, shutil, sys, zipfile
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

wheel, dest = sys.argv[1], Path(sys.argv[2])
reqs = [r for reqfile in sys.argv[3:] for r in yaml.safe_load(open(reqfile))["collections"]]
with zipfile.ZipFile(wheel) as zf:
    for req in reqs:
        ns, name = req["name"].split(".")
        prefix = f"ansible_collections/{ns}/{name}/"
        manifest = json.loads(zf.read(prefix + "MANIFEST.json"))
        version = manifest["collection_info"]["version"]
        spec = SpecifierSet(req.get("version", ">=0").replace(" ", ""))
        if Version(version) not in spec:
            sys.exit(f"setup: {req['name']} {version} from the ansible wheel does not satisfy {spec}")
        target = dest / "ansible_collections" / ns / name
        shutil.rmtree(target, ignore_errors=True)
        for member in zf.namelist():
            if member.startswith(prefix) and not member.endswith("/"):
                zf.extract(member, dest)
        print(f"setup: {req['name']} {version} (from the ansible wheel)")
EOF
fi

# Mitogen's strategy plugins at a path that does not name the Python version
# (the nfs_shared scenario's ANSIBLE_STRATEGY_PLUGINS).
ln -sfn "$("$venv/bin/python" -c 'import ansible_mitogen, os; print(os.path.dirname(ansible_mitogen.__file__))')" \
  "$root/.cache/ansible_mitogen"

# This checkout is the collection mailops.mailstack.
mkdir -p "$coll/ansible_collections/mailops"
ln -sfn "$root" "$coll/ansible_collections/mailops/mailstack"

echo "$want" >"$stamp"
log "done: activate with 'source .venv/bin/activate' (make targets do it for you)"
