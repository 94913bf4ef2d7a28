"""playbooks/site.yml refuses an inventory that is not a topology, before any
host is contacted, with a message naming the problem.

The inventories point at hosts that do not exist: a run that got past the
topology check would fail differently (unreachable), so the assertions prove
that the check stopped it first.
"""

import sys
from pathlib import Path

import pytest

from mailstack_testlib import CONFIG, ansible_env, playbook as ansible_playbook

REPO = Path(__file__).resolve().parents[2]


def run_site(tmp_path, inventory, *options, playbook=REPO / "playbooks" / "site.yml"):
    inv = tmp_path / "hosts.yml"
    inv.write_text(inventory)
    return ansible_playbook(*options, "-i", inv, playbook, cwd=REPO, env=ansible_env(config=CONFIG), timeout=300)


UNREACHABLE = "  vars:\n    ansible_host: 192.0.2.1\n    ansible_connection: ssh\n"


@pytest.mark.parametrize("inventory, message", [
    ("all:\n" + UNREACHABLE + "  children:\n    mail_backup_mx:\n      hosts:\n        mx2:\n",
     "group 'mail_backup_mx' (mx2) has no primary: group 'mail_mx' is empty"),
    ("all:\n" + UNREACHABLE + "  children:\n    mail_mx:\n      hosts:\n        mx1:\n        mx2:\n"
     "    mail_store:\n      hosts:\n        mx1:\n        mx2:\n",
     "group 'mail_mx' has 2 hosts (mx1, mx2)"),
    ("all:\n" + UNREACHABLE + "  hosts:\n    lonely:\n",
     "no topology"),
    ("all:\n" + UNREACHABLE + "  children:\n    mail_mx:\n      hosts:\n        mx1:\n        mx2:\n"
     "    mail_store:\n      hosts:\n        mx1:\n        mx2:\n    mail_nfs:\n      hosts:\n        mx2:\n"
     "    mail_db:\n      hosts:\n        db1:\n",
     "nfs_shared: mx2 is both the NFS server and a mail server; use another host"),
    ("all:\n" + UNREACHABLE + "  children:\n    mail_mx:\n      hosts:\n        mx1:\n"
     "    mail_store:\n      hosts:\n        mx1:\n    mail_db:\n      hosts:\n        mx1:\n"
     "    mail_san:\n      hosts:\n        san1:\n",
     "group 'mail_san' (san1) holds the iSCSI target behind the NFS server; only the nfs_shared topology"),
], ids=["backup-without-primary", "two-single-servers", "no-mail-groups", "nfs-server-is-a-mail-server",
        "iscsi-target-without-nfs"])
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


@pytest.mark.parametrize("extra, task, message", [
    ("    postfix_message_size_limit: lots", "Validate the options of each role this host runs",
     "postfix_message_size_limit"),
    ("    postfix_inet_protocols: ipv5", "Validate the options of each role this host runs", "postfix_inet_protocols"),
    ("    postfix_reinject_clients: ['10.0.0.9/33']", "Check the addresses and networks this host's options name",
     "mx1: postfix_reinject_clients: '10.0.0.9/33' is not an IP address or CIDR network"),
    ("    mailstack_address: 10.0.0.300", "Refuse an inventory the roles cannot be wired from",
     "mx1: mailstack_address: '10.0.0.300' is not an IP address"),
], ids=["wrong-type", "unknown-choice", "bad-network", "bad-address"])
def test_bad_role_option_stops_before_any_change(tmp_path, extra, task, message):
    result = run_site(tmp_path, LOCAL_SINGLE.format(python=sys.executable, extra=extra), "--check")
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "TASK [%s]" % task in out, out
    assert message in out, out
    assert "PLAY [Base of every host]" not in out, out


def test_a_bad_option_on_one_host_stops_every_host(tmp_path):
    # filter1's option is wrong, mx1's are right: mx1 must not go on alone.
    result = run_site(tmp_path, LOCAL_SINGLE.format(python=sys.executable, extra="")
                      + "    mail_filter:\n      hosts:\n        filter1:\n          content_filter_children: many\n",
                      "--check")
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "content_filter_children" in out, out
    assert "PLAY [Base of every host]" not in out, out


def test_the_root_site_yml_runs_the_same_plays(tmp_path):
    """`ansible-playbook site.yml` from a checkout: the same refusal, the same
    pre-flight task, as playbooks/site.yml."""
    result = run_site(tmp_path, LOCAL_SINGLE.format(python=sys.executable, extra="    postfix_inet_protocols: ipv5"),
                      "--check", playbook=REPO / "site.yml")
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "TASK [Validate the options of each role this host runs]" in out and "postfix_inet_protocols" in out, out
    assert "PLAY [Base of every host]" not in out, out
