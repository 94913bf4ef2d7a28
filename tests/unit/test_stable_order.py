"""Nothing the roles and playbooks render depends on Python's set order.

Ansible's union, difference, intersect and symmetric_difference filters go
through a set when their items are strings, so their order changes from one
run to the next (hash randomisation): a configuration file built from them
is rewritten, and its service reloaded, on a run that changes nothing (the
sharded scenario's idempotence caught this in dovecot.conf). Use
`(a + b) | unique`, `reject('in', b)` or `select('in', b)` instead, which
keep the order.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SET_FILTERS = re.compile(r"\|\s*(union|difference|intersect|symmetric_difference)\b")
FILES = sorted(p for d in ("roles", "playbooks") for p in (ROOT / d).rglob("*")
               if p.suffix in (".yml", ".yaml", ".j2") and p.is_file())


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_no_set_ordered_filter(path):
    found = [(n, line.strip()) for n, line in enumerate(path.read_text().splitlines(), 1)
             if SET_FILTERS.search(line)]
    assert not found, "%s: a filter whose order changes between runs: %s" % (path.relative_to(ROOT), found)
