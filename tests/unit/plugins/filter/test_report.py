"""The report filter: per-host mailstack_info results in, one report out."""

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.mailops.mailstack.plugins.filter.report import mailstack_report

FS = {"bytes_used_percent": 12.5, "inodes_used_percent": 3.0}


def queue(deferred=0, oldest=None):
    queues = dict.fromkeys(("maildrop", "incoming", "active", "deferred", "hold", "corrupt"), 0)
    queues["deferred"] = deferred
    return {"messages": deferred, "queues": queues, "bytes": 0, "oldest_age_seconds": oldest,
            "deferred_reasons": []}


def result(mailstack, problems=()):
    return {"changed": False, "mailstack": mailstack, "skipped": {}, "problems": list(problems)}


SHARDS = {"hosts": [
    {"name": "ms1", "address": "10.0.0.11", "state": "active", "weight": 100, "users": 3, "moves_in": {}},
    {"name": "ms2", "address": "10.0.0.12", "state": "draining", "weight": 100, "users": 1,
     "moves_in": {"held": 1}},
], "users_without_host": 0, "users_on_unknown_hosts": {}}


def test_sharded_report_joins_the_database_shards_with_each_shards_storage():
    report = mailstack_report({
        "ns1": result({"database": {"role": "primary", "replicas": 0, "shards": SHARDS}}),
        "ms1": result({"storage": {"file_system": FS, "mail": {"bytes": 3 * 1024 ** 2, "files": 9, "mailboxes": 3}}}),
        "smtp1": result({"postfix": queue(deferred=2, oldest=75)},
                        problems=["postfix: 2 deferred message(s), the oldest queued 75 s ago"]),
    })
    assert [(s["name"], s["users"], s["bytes"], s["mailboxes"]) for s in report["shards"]] == [
        ("ms1", 3, 3 * 1024 ** 2, 3), ("ms2", 1, None, None)]
    assert report["problems"] == ["smtp1: postfix: 2 deferred message(s), the oldest queued 75 s ago"]
    assert report["lines"] == [
        "ms1: mail root 12.5% of bytes, 3.0% of inodes used, 3 mailboxes in 3.0 MiB",
        "ns1: database primary, 0 replica(s) connected",
        "smtp1: queue 2 (deferred 2, oldest 75 s)",
        "shards:",
        "  ms1 (active, weight 100): 3 users, 3.0 MiB",
        "  ms2 (draining, weight 100): 1 users, ?; moving in: 1 held",
        "problems: 1",
        "  smtp1: postfix: 2 deferred message(s), the oldest queued 75 s ago",
    ]


def test_replica_lag_and_a_stopped_dovecot_are_in_the_summary():
    report = mailstack_report({
        "db2": result({"database": {"role": "replica", "replication": {
            "healthy": True, "seconds_behind": 42, "problems": []}}}),
        "mx1": result({"dovecot": {"running": False, "processes": {}}, "postfix": queue()}),
    })
    assert report["lines"][:2] == ["db2: database replica, healthy, lag 42 s",
                                   "mx1: queue 0 (deferred 0); dovecot NOT running"]
    assert report["lines"][-1] == "problems: none" and report["shards"] == []


def test_galera_nodes_say_their_state_and_their_clusters_size():
    node = {"cluster_size": 3, "cluster_status": "Primary", "local_state": "Synced", "ready": True}
    report = mailstack_report({
        "ns1": result({"database": {"role": "galera", "galera": node, "shards": SHARDS}}),
        "proxy1": result({"database": {"role": "galera", "galera": dict(node, local_state="Donor/Desynced")}},
                         problems=["database: this Galera node is Donor/Desynced, not Synced"]),
    })
    assert report["lines"][:2] == ["ns1: database Galera node, Synced, Primary, cluster of 3",
                                   "proxy1: database Galera node, Donor/Desynced, Primary, cluster of 3"]
    assert report["problems"] == ["proxy1: database: this Galera node is Donor/Desynced, not Synced"]
    assert [s["name"] for s in report["shards"]] == ["ms1", "ms2"]


def test_a_host_without_a_result_is_a_problem_not_skipped():
    report = mailstack_report({"mx1": {"failed": True, "msg": "no result (unreachable?)"},
                               "ns1": result({})})
    assert report["problems"] == ["mx1: no report: no result (unreachable?)"]
    assert report["lines"][:2] == ["mx1: no report", "ns1: nothing to report"]
    assert "mx1" not in report["hosts"]


def test_dovecot_sessions_and_certificates():
    line = mailstack_report({"proxy1": result({
        "dovecot": {"running": True, "processes": {"master": 1, "imap-login": 3},
                    "sessions": {"users": 2, "connections": 3, "by_service": {}}, "proxied": 3},
        "certificates": [{"path": "/etc/ssl/mailstack/host.crt", "days_left": 800}],
    })})["lines"][0]
    assert line == ("proxy1: dovecot 4 processes, 2 users in 3 connections, 3 proxied; "
                    "certificate 800 days left")


def test_not_a_mapping_is_refused():
    with pytest.raises(AnsibleFilterError, match="mapping of host"):
        mailstack_report(["mx1"])
