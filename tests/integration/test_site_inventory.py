"""playbooks/site.yml refuses an inventory that is not a topology, before any
host is contacted, with a message naming the problem.

The inventories point at hosts that do not exist: a run that got past the
topology check would fail differently (unreachable), so the assertions prove
that the check stopped it first.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_site(tmp_path, inventory):
    inv = tmp_path / "hosts.yml"
    inv.write_text(inventory)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    bindir = Path(sys.executable).parent
    return subprocess.run(
        [str(bindir / "ansible-playbook"), "-i", str(inv), str(REPO / "playbooks" / "site.yml")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


UNREACHABLE = "  vars:\n    ansible_host: 192.0.2.1\n    ansible_connection: ssh\n"


@pytest.mark.parametrize("inventory, message", [
    ("all:\n" + UNREACHABLE + "  children:\n    mail_backup_mx:\n      hosts:\n        mx2:\n",
     "group 'mail_backup_mx' (mx2) has no primary: group 'mail_mx' is empty"),
    ("all:\n" + UNREACHABLE + "  children:\n    mail_mx:\n      hosts:\n        mx1:\n        mx2:\n"
     "    mail_store:\n      hosts:\n        mx1:\n        mx2:\n",
     "group 'mail_mx' has 2 hosts (mx1, mx2)"),
    ("all:\n" + UNREACHABLE + "  hosts:\n    lonely:\n",
     "no topology"),
], ids=["backup-without-primary", "two-single-servers", "no-mail-groups"])
def test_invalid_inventory_is_refused(tmp_path, inventory, message):
    result = run_site(tmp_path, inventory)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "The inventory is not a valid mailstack topology" in out, out
    assert message in out, out
    assert "UNREACHABLE" not in out, out
