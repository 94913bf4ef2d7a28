#!/usr/bin/env bash
# ansible-test sanity on this checkout, placed where ansible-test wants a
# collection: build/ansible_collections/mailops/mailstack (a copy of the files
# git tracks, plus new ones it does not ignore). Test requirements go into
# ansible-test's own virtual environments (--venv), not into .venv.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=$root/build/ansible_collections/mailops/mailstack
rm -rf "$dest"
mkdir -p "$dest"
cd "$root"
git ls-files -z -co --exclude-standard | grep -zv '^build/' | xargs -0 cp --parents -t "$dest"
cd "$dest"
# ansible-test reads the file list from git.
git init -q && git add -A
export PATH=$root/.venv/bin:$PATH

# ansible-test bootstraps pip in its virtual environments with a get-pip script
# from a host this lab cannot reach. Stand in for it with the pip wheel Python
# itself bundles (ensurepip, or Debian's python-wheels): it then installs the
# pinned pip and the test requirements from PyPI as the real script would.
pip_version=$("$root/.venv/bin/python" - <<'PY'
import re, pathlib, ansible_test
src = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", src.read_text()).group(1))
PY
)
get_pip=~/.ansible/test/cache/get_pip_${pip_version//./_}.py
if [[ ! -f $get_pip ]] || ! grep -q 'mailstack stand-in' "$get_pip"; then
  mkdir -p "$(dirname "$get_pip")"
  cat >"$get_pip" <<'PY'
# mailstack stand-in for get-pip.py (see scripts/sanity.sh).
import glob, os, sys
import ensurepip
wheels = sorted(glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl")))
wheels += sorted(glob.glob("/usr/share/python-wheels/pip-*.whl"))
if not wheels:
    sys.exit("no bundled pip wheel found to bootstrap pip")
sys.path.insert(0, wheels[-1])
from pip._internal.cli.main import main
# get-pip's own flags, which pip install does not know.
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--upgrade"] + args))
PY
fi
exec ansible-test sanity --python "$("$root/.venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
  --venv --requirements --color no "$@"
