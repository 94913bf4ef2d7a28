"""Tests import the collection's Python code as ansible_collections.mailops.mailstack.

scripts/setup.sh links the checkout into .cache/collections, which
pytest.ini (pythonpath) puts on the import path with the test library
(tests/lib), as Ansible itself finds the collection.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / ".cache" / "collections"

if not (COLLECTIONS / "ansible_collections" / "mailops" / "mailstack").exists():
    raise RuntimeError("run scripts/setup.sh first: %s has no mailops.mailstack link" % COLLECTIONS)
