"""Make this checkout importable as ansible_collections.mailops.mailstack.

scripts/setup.sh links the checkout into .cache/collections; tests import the
collection's Python code from there, as Ansible itself does.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / ".cache" / "collections"

if not (COLLECTIONS / "ansible_collections" / "mailops" / "mailstack").exists():
    raise RuntimeError("run scripts/setup.sh first: %s has no mailops.mailstack link" % COLLECTIONS)
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
