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


# A valid single topology on this machine (connection local) with one bad
# role option: the pre-flight play must stop the run before the first role,
# naming the option. --check keeps the machine untouched even if it did not.
LOCAL_SINGLE = """all:
  vars:
    ansible_connection: local
    ansible_python_interpreter: {python}
    mailstack_domain: example.test
    mail_database_admin_password: x
    mail_database_postfix_password: x
    mail_database_dovecot_password: x
    webmail_des_key: abcdefghijklmnopqrstuvwx
{extra}
  children:
    mail_mx:
      hosts:
        mx1:
    mail_store:
      hosts:
        mx1:
    mail_db:
      hosts:
        mx1:
"""


@pytest.mark.parametrize("extra, message", [
    ("    postfix_message_size_limit: lots", "postfix_message_size_limit"),
    ("    postfix_inet_protocols: ipv5", "postfix_inet_protocols"),
], ids=["wrong-type", "unknown-choice"])
def test_bad_role_option_stops_before_any_change(tmp_path, extra, message):
    inv = tmp_path / "hosts.yml"
    inv.write_text(LOCAL_SINGLE.format(python=sys.executable, extra=extra))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    bindir = Path(sys.executable).parent
    result = subprocess.run(
        [str(bindir / "ansible-playbook"), "--check", "-i", str(inv), str(REPO / "playbooks" / "site.yml")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "Validate the options of each role this host runs" in out, out
    assert message in out, out
    assert "PLAY [Base of every host]" not in out, out
