"""mailstack_info's readers, on outputs recorded from the sharded lab
(tests/unit/plugins/module_utils/fixtures/info/, see its README)."""

import collections
import os

import pytest

from ansible_collections.mailops.mailstack.plugins.module_utils import info

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "info")


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return f.read()


def test_postqueue_with_deferred_mail():
    text = fixture("postqueue-deferred.jsonl")
    arrivals = [int(line.split('"arrival_time": ')[1].split(",")[0]) for line in text.splitlines() if line]
    got = info.postfix_queue(text, now=max(arrivals) + 100)
    assert got["messages"] == 2 and got["queues"]["deferred"] == 2 and got["bytes"] == 986 + 917
    assert got["oldest_age_seconds"] == max(arrivals) + 100 - min(arrivals)
    # bob twice, dave once, all for the same reason.
    assert got["deferred_reasons"] == [dict(reason="connect to 10.89.0.21[10.89.0.21]:24: Connection refused",
                                            recipients=3)]


def test_an_empty_queue():
    got = info.postfix_queue("")
    assert got["messages"] == 0 and got["oldest_age_seconds"] is None and got["deferred_reasons"] == []


def test_the_most_frequent_deferral_reasons_first_and_at_most_five():
    lines = []
    for i in range(8):
        rcpts = ', '.join('{"address": "u%d@example.test", "delay_reason": "reason %d"}' % (j, i) for j in range(i + 1))
        lines.append('{"queue_name": "deferred", "queue_id": "Q%d", "arrival_time": %d, "message_size": 10, '
                     '"sender": "s@example.test", "recipients": [%s]}' % (i, 1000 + i, rcpts))
    got = info.postfix_queue("\n".join(lines), now=2000)
    reasons = [r["reason"] for r in got["deferred_reasons"]]
    assert reasons == ["reason 7", "reason 6", "reason 5", "reason 4", "reason 3"]
    assert got["deferred_reasons"][0]["recipients"] == 8 and got["oldest_age_seconds"] == 1000


def test_postqueue_garbage_is_an_error_naming_the_line():
    with pytest.raises(ValueError, match="not a JSON line: 'Mail queue is empty'"):
        info.postfix_queue("Mail queue is empty\n")


def test_dovecot_processes_by_service():
    titles = fixture("dovecot-process-titles.txt").splitlines()
    got = info.dovecot_processes(titles)
    assert got == {"master": 1, "anvil": 1, "auth": 2, "config": 1, "imap": 2, "log": 1, "pop3": 1, "stats": 1}


def test_doveadm_who():
    # alice in IMAP and POP3, carol in IMAP.
    got = info.dovecot_sessions(fixture("doveadm-who.tab"))
    assert got == dict(users=2, connections=3, by_service={"imap": 2, "pop3": 1})


def test_doveadm_who_with_nobody_logged_in():
    assert info.dovecot_sessions("") == dict(users=0, connections=0, by_service={})


def test_doveadm_who_with_an_unknown_header_names_the_column():
    with pytest.raises(ValueError, match="no column username"):
        info.dovecot_sessions("user\tconnections\n")


def test_doveadm_proxy_list_counts_sessions_not_the_headers_of_its_blocks():
    # Two IMAP sessions and one POP3 session; doveadm prints a header per block.
    assert info.proxied_sessions(fixture("doveadm-proxy-list.tab")) == 3
    assert info.proxied_sessions("") == 0


StatVfs = collections.namedtuple("StatVfs", "f_bsize f_frsize f_blocks f_bfree f_bavail f_files f_ffree f_favail")


def test_file_system_use_counts_reserved_blocks_as_unavailable():
    # 1000 blocks of 4 KiB, 300 free of which 250 available to users; 100 inodes, 40 free.
    got = info.file_system(StatVfs(4096, 4096, 1000, 300, 250, 100, 40, 40))
    assert got["bytes_used"] == 700 * 4096 and got["bytes_available"] == 250 * 4096
    assert got["bytes_used_percent"] == round(100.0 * 700 / 950, 1)
    assert (got["inodes_used"], got["inodes_used_percent"]) == (60, 60.0)


def test_tree_usage(tmp_path):
    for user, size in (("alice", 10), ("bob", 20)):
        d = tmp_path / "example.test" / user / "Maildir" / "cur"
        d.mkdir(parents=True)
        (d / "1.msg").write_bytes(b"x" * size)
    (tmp_path / "example.org").mkdir()
    assert info.tree_usage(str(tmp_path)) == dict(bytes=30, files=2, mailboxes=2)


def test_certificate_expiry():
    now = 1796222147  # when the fixture was recorded (2026-12-02)
    got = info.certificate("/etc/ssl/mailstack/host.crt", fixture("openssl-x509.txt"), now=now)
    assert got == dict(path="/etc/ssl/mailstack/host.crt", subject="CN = ms1", not_after="2029-03-06T14:32:54Z",
                       days_left=824)


def test_certificate_without_an_end_date_is_an_error():
    with pytest.raises(ValueError, match="/x.crt: openssl printed no notAfter"):
        info.certificate("/x.crt", "subject=CN = x\n")


def test_shards_with_users_and_moves():
    got = info.shards([("ms1", "10.0.0.11", "active", 100), ("ms2", "10.0.0.12", "draining", 50)],
                      [("ms1", 3), (None, 2), ("gone", 1)], [("ms1", "held", 1), ("ms1", "copying", 2)])
    assert got["hosts"] == [
        dict(name="ms1", address="10.0.0.11", state="active", weight=100, users=3, moves_in={"held": 1, "copying": 2}),
        dict(name="ms2", address="10.0.0.12", state="draining", weight=50, users=0, moves_in={}),
    ]
    assert got["users_without_host"] == 2 and got["users_on_unknown_hosts"] == {"gone": 1}


def test_a_galera_nodes_view_of_itself_and_its_cluster():
    status = {"wsrep_cluster_size": "3", "wsrep_cluster_status": "Primary", "wsrep_local_state_comment": "Synced",
              "wsrep_ready": "ON", "wsrep_cluster_state_uuid": "5c3f0a8e-0000-11ef-8000-0a5800000001"}
    assert info.galera(status) == dict(cluster_size=3, cluster_status="Primary", local_state="Synced", ready=True,
                                       cluster_uuid="5c3f0a8e-0000-11ef-8000-0a5800000001")
    # A node cut off from its peers (no quorum): what it answers.
    assert info.galera({"wsrep_cluster_size": "1", "wsrep_cluster_status": "non-Primary",
                        "wsrep_local_state_comment": "Initialized", "wsrep_ready": "OFF"})["ready"] is False
    assert info.galera({})["cluster_size"] is None


GALERA_OK = dict(cluster_size=3, cluster_status="Primary", local_state="Synced", ready=True)


@pytest.mark.parametrize("section, want", [
    ({"database": {"role": "galera", "galera": GALERA_OK}}, []),
    ({"database": {"role": "galera", "galera": dict(GALERA_OK, cluster_size=1, cluster_status="non-Primary",
                                                    local_state="Initialized", ready=False)}},
     ["database: this Galera node is outside the Primary component (non-Primary): it refuses reads and writes "
      "(the cluster lost its quorum, or this node its peers)"]),
    ({"database": {"role": "galera", "galera": dict(GALERA_OK, local_state="Joining: receiving State Transfer",
                                                    ready=False)}},
     ["database: this Galera node is Joining: receiving State Transfer and not ready, not Synced"]),
    ({"database": {"role": "galera", "galera": dict(GALERA_OK, local_state="Donor/Desynced")}},
     ["database: this Galera node is Donor/Desynced, not Synced"]),
])
def test_galera_problems(section, want):
    assert info.problems(section, cert_warn_days=14, disk_warn_percent=90) == want


@pytest.mark.parametrize("section, want", [
    ({"postfix": {"running": False}}, ["postfix: enabled but not running"]),
    ({"dovecot": {"running": False, "processes": {}}}, ["dovecot: enabled but not running"]),
    ({"postfix": {"running": True, "queues": {"deferred": 2, "hold": 1}, "oldest_age_seconds": 60}},
     ["postfix: 2 deferred message(s), the oldest queued 60 s ago", "postfix: 1 message(s) on hold"]),
    ({"database": {"replication": {"healthy": False, "problems": ["the SQL thread is not running"]}}},
     ["database: replication is not healthy: the SQL thread is not running"]),
    ({"storage": {"file_system": {"bytes_used_percent": 95.0, "inodes_used_percent": 10.0}}},
     ["storage: bytes at 95.0% (warning from 90%)"]),
    ({"certificates": [{"path": "/a.crt", "days_left": 3}, {"path": "/b.crt", "error": "no such file"}]},
     ["certificate /a.crt expires in 3 day(s)", "certificate /b.crt: no such file"]),
    ({"postfix": {"running": True, "queues": {"deferred": 0}}, "dovecot": {"running": True}}, []),
])
def test_problems(section, want):
    assert info.problems(section, cert_warn_days=14, disk_warn_percent=90) == want
