"""move_user.yml and drain_shard.yml refuse any topology but sharded, before
any host is contacted: on nfs_shared a "move" would sync a Maildir onto
itself and its cleanup delete the only copy.

The inventories point at hosts that do not exist (as in
test_site_inventory.py): a run that got past the guard would fail
differently (unreachable), so the assertions prove the guard stopped it."""

from pathlib import Path

import pytest

from mailstack_testlib import CONFIG, ansible_env, playbook as ansible_playbook

REPO = Path(__file__).resolve().parents[2]
UNREACHABLE = "  vars:\n    ansible_host: 192.0.2.1\n    ansible_connection: ssh\n"
NFS_SHARED = ("all:\n" + UNREACHABLE + "  children:\n    mail_mx:\n      hosts:\n        mx1:\n        mx2:\n"
              "    mail_store:\n      hosts:\n        mx1:\n        mx2:\n    mail_nfs:\n      hosts:\n        nfs1:\n"
              "    mail_db:\n      hosts:\n        db1:\n")
SINGLE = ("all:\n" + UNREACHABLE + "  children:\n    mail_mx:\n      hosts:\n        mx1:\n"
          "    mail_store:\n      hosts:\n        mx1:\n")


@pytest.mark.parametrize("playbook, extra", [
    ("move_user.yml", ["-e", "mailstack_move_email=alice@example.org", "-e", "mailstack_move_target=mx2"]),
    ("drain_shard.yml", ["-e", "mailstack_drain_shard=mx1"]),
])
@pytest.mark.parametrize("inventory, topology", [(NFS_SHARED, "nfs_shared"), (SINGLE, "single")],
                         ids=["nfs_shared", "single"])
def test_a_move_is_refused_on_any_topology_but_sharded(tmp_path, playbook, extra, inventory, topology):
    inv = tmp_path / "hosts.yml"
    inv.write_text(inventory)
    result = ansible_playbook(*extra, "-i", inv, REPO / "playbooks" / playbook, cwd=REPO,
                              env=ansible_env(config=CONFIG), timeout=300)
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, out
    assert "%s moves mailboxes between the shards of the sharded topology; this inventory is '%s'" % (
        playbook, topology) in out, out
    assert ("delete the only copy" in out) == (topology == "nfs_shared"), out
    assert "UNREACHABLE" not in out and "PLAY [Decide the topology" not in out, out
