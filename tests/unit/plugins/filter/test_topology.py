"""The inventory groups -> topology decision of playbooks/site.yml."""

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.mailops.mailstack.plugins.filter.topology import mail_topology


def decide(**groups):
    return mail_topology(dict(groups, all=[], ungrouped=[]))


def test_single_server():
    d = decide(mail_mx=["mx1"], mail_store=["mx1"], mail_db=["mx1"])
    assert d == {"topology": "single", "errors": [], "groups": d["groups"]}
    assert d["groups"]["mail_filter"] == []


def test_single_server_with_dedicated_filter_and_dns():
    d = decide(mail_mx=["mx1"], mail_store=["mx1"], mail_db=["mx1"], mail_filter=["filter1"], mail_dns=["ns1"])
    assert (d["topology"], d["errors"]) == ("single", [])


def test_one_content_filter_host():
    d = decide(mail_mx=["mx1"], mail_store=["mx1"], mail_db=["mx1"], mail_filter=["f1", "f2"])
    assert d["errors"] == ["group 'mail_filter' has 2 hosts (f1, f2); every mail server hands its mail "
                           "to one content filter host"]


def test_single_refuses_two_mail_servers():
    d = decide(mail_mx=["mx1", "mx2"], mail_store=["mx1", "mx2"])
    assert d["topology"] == "single"
    assert any("'mail_mx' has 2 hosts (mx1, mx2)" in e for e in d["errors"])


def test_single_needs_the_database_host():
    d = decide(mail_mx=["mx1"], mail_store=["mx1"])
    assert any("single: group 'mail_db' is empty" in e for e in d["errors"])


def test_single_refuses_store_on_another_host():
    d = decide(mail_mx=["mx1"], mail_store=["store1"])
    assert any("'mail_mx' (mx1) and 'mail_store' (store1) must be the same host" in e for e in d["errors"])


def test_backup_mx():
    d = decide(mail_mx=["mx1"], mail_store=["mx1"], mail_db=["mx1"],
               mail_backup_mx=["mx2"], mail_db_replica=["mx2"])
    assert (d["topology"], d["errors"]) == ("backup_mx", [])


def test_backup_mx_without_primary_names_the_missing_group():
    d = decide(mail_backup_mx=["mx2"])
    assert d["topology"] == "backup_mx"
    assert "backup_mx: group 'mail_backup_mx' (mx2) has no primary: group 'mail_mx' is empty" in d["errors"]
    assert any("'mail_db' is empty" in e for e in d["errors"])


def test_backup_mx_needs_its_own_replica():
    d = decide(mail_mx=["mx1"], mail_store=["mx1"], mail_db=["mx1"], mail_backup_mx=["mx2"],
               mail_db_replica=["db9"])
    assert ("backup_mx: mx2 must also be in 'mail_db_replica': the backup answers recipient lookups from its "
            "own replica of the mail database while the primary is down") in d["errors"]
    assert "backup_mx: 'mail_db_replica' (db9) holds hosts that are not backup MX hosts" in d["errors"]


def test_backup_mx_must_be_another_host():
    d = decide(mail_mx=["mx1"], mail_store=["mx1"], mail_db=["mx1"], mail_backup_mx=["mx1"])
    assert any("mx1 is in 'mail_backup_mx' and also in 'mail_mx'" in e for e in d["errors"])


def test_nfs_shared_is_named_and_built():
    d = decide(mail_mx=["a", "b"], mail_store=["a", "b"], mail_nfs=["nfs1"],
               mail_db=["db1"], mail_db_replica=["a", "b"])
    assert d["topology"] == "nfs_shared"
    assert d["errors"] == []


def test_nfs_shared_needs_two_servers_and_one_nfs_host():
    d = decide(mail_mx=["a"], mail_store=["a"], mail_nfs=["n1", "n2"], mail_db=["db1"])
    assert any("'mail_nfs' has 2 hosts (n1, n2)" in e for e in d["errors"])
    assert any("'mail_mx' has 1 host(s) (a)" in e for e in d["errors"])


def test_nfs_shared_conflicts_with_backup_mx():
    d = decide(mail_mx=["a", "b"], mail_store=["a", "b"], mail_nfs=["n"], mail_db=["db"], mail_backup_mx=["c"])
    assert any("'mail_backup_mx' (c) conflicts with 'mail_nfs'" in e for e in d["errors"])


def test_nfs_shared_takes_one_iscsi_target_on_another_host():
    base = dict(mail_mx=["a", "b"], mail_store=["a", "b"], mail_nfs=["n"], mail_db=["db"])
    assert decide(mail_san=["san1"], **base)["errors"] == []
    assert decide(mail_san=["san1", "san2"], **base)["errors"] == [
        "nfs_shared: group 'mail_san' has 2 hosts (san1, san2); the NFS server's store is one LUN of one "
        "iSCSI target"]
    assert decide(mail_san=["n"], **base)["errors"] == [
        "nfs_shared: n is in 'mail_san' and is also the NFS server or a mail server; the iSCSI target is the "
        "storage behind the NFS server, another host"]


def test_an_iscsi_target_needs_the_nfs_topology():
    d = decide(mail_mx=["mx1"], mail_store=["mx1"], mail_db=["mx1"], mail_san=["san1"])
    assert d["errors"] == ["group 'mail_san' (san1) holds the iSCSI target behind the NFS server; only the "
                           "nfs_shared topology ('mail_nfs') has one"]


def test_sharded_is_named_and_built():
    d = decide(mail_db=["db1"], mail_db_replica=["db2"], mail_smtp=["smtp1", "smtp2"],
               mail_proxy=["imap1"], mail_webmail=["web1"], mail_store=["ms1", "ms2", "ms3"])
    assert d["topology"] == "sharded"
    assert d["errors"] == []


def test_built_topologies_are_not_refused_as_unbuilt():
    for d in (decide(mail_mx=["mx1"], mail_store=["mx1"], mail_db=["mx1"]),
              decide(mail_mx=["mx1"], mail_store=["mx1"], mail_db=["mx1"], mail_backup_mx=["mx2"],
                     mail_db_replica=["mx2"])):
        assert d["errors"] == []


def test_sharded_missing_tier_and_conflicts():
    d = decide(mail_smtp=["smtp1"], mail_store=["smtp1"], mail_mx=["mx1"])
    errors = " | ".join(d["errors"])
    assert "group 'mail_proxy' is empty" in errors
    assert "group 'mail_db' is empty" in errors
    assert "group 'mail_mx' (mx1) conflicts" in errors
    assert "smtp1 is both a front tier" in errors


def test_no_topology():
    d = decide(mail_dns=["ns1"])
    assert d["topology"] is None
    assert "no topology" in d["errors"][0]


def test_not_a_mapping():
    with pytest.raises(AnsibleFilterError, match="expects the groups mapping"):
        mail_topology(["mx1"])


# --- mail_dns_zone -----------------------------------------------------------

from ansible_collections.mailops.mailstack.plugins.filter.topology import mail_dns_zone  # noqa: E402

ADDR = {"ns1": "10.0.0.53", "mx1": "10.0.0.1", "mx2": "10.0.0.2", "filter1": "10.0.0.9"}


def records(zone, rtype):
    return sorted((r["name"], r["value"]) for r in zone["records"] if r["type"] == rtype)


def test_zone_single_server():
    d = decide(mail_mx=["mx1"], mail_store=["mx1"], mail_db=["mx1"], mail_filter=["filter1"], mail_dns=["ns1"])
    zone = mail_dns_zone(d, "example.test", ADDR)
    assert zone["name"] == "example.test"
    assert zone["nameservers"] == ["ns1.example.test."]
    assert records(zone, "MX") == [("@", "5 mx1.example.test.")]
    assert ("mx1", "10.0.0.1") in records(zone, "A") and ("ns1", "10.0.0.53") in records(zone, "A")
    assert ("@", '"v=spf1 mx -all"') in records(zone, "TXT")
    assert any(n == "_dmarc" and "v=DMARC1; p=quarantine" in v for n, v in records(zone, "TXT"))


def test_zone_backup_mx_priorities():
    d = decide(mail_mx=["mx1"], mail_store=["mx1"], mail_db=["mx1"], mail_backup_mx=["mx2"], mail_dns=["ns1"])
    assert records(mail_dns_zone(d, "example.test", ADDR), "MX") == [
        ("@", "10 mx2.example.test."), ("@", "5 mx1.example.test.")]


def test_zone_nfs_round_robin():
    d = decide(mail_mx=["mx1", "mx2"], mail_store=["mx1", "mx2"], mail_nfs=["filter1"], mail_db=["ns1"],
               mail_dns=["ns1"])
    zone = mail_dns_zone(d, "example.test", ADDR)
    assert [v for n, v in records(zone, "A") if n == "mail"] == ["10.0.0.1", "10.0.0.2"]
    assert records(zone, "MX") == [("@", "5 mail.example.test.")]


def test_zone_names_hosts_without_address():
    d = decide(mail_mx=["mx9"], mail_store=["mx9"], mail_db=["mx9"], mail_dns=["ns1"])
    with pytest.raises(AnsibleFilterError, match="no address for host"):
        mail_dns_zone(d, "example.test", ADDR)


def test_zone_aaaa_for_a_host_reached_over_ipv6():
    d = decide(mail_mx=["mx1"], mail_store=["mx1"], mail_db=["mx1"], mail_filter=["filter1"], mail_dns=["ns1"])
    zone = mail_dns_zone(d, "example.test", dict(ADDR, filter1="fd00::9"))
    assert records(zone, "AAAA") == [("filter1", "fd00::9")]
    assert "filter1" not in [n for n, v in records(zone, "A")]


# --- mail_mta_sts_policy -----------------------------------------------------

from ansible_collections.mailops.mailstack.plugins.filter.topology import mail_mta_sts_policy  # noqa: E402


def test_mta_sts_policy_names_the_mx_records_of_each_topology():
    nfs = decide(mail_mx=["mx1", "mx2"], mail_store=["mx1", "mx2"], mail_nfs=["filter1"], mail_db=["ns1"],
                 mail_dns=["ns1"])
    policy = mail_mta_sts_policy(nfs, "example.test", "enforce", 86400)
    assert policy["text"] == "version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\r\nmax_age: 86400\r\n"
    assert records(mail_dns_zone(nfs, "example.test", ADDR), "MX") == [("@", "5 mail.example.test.")]
    assert policy["mx"] == ["mail.example.test"]
    assert len(policy["id"]) == 32 and policy["id"].isalnum()


def test_mta_sts_policy_refuses_a_wrong_mode_or_max_age():
    d = decide(mail_mx=["mx1"], mail_store=["mx1"], mail_db=["mx1"], mail_dns=["ns1"])
    with pytest.raises(AnsibleFilterError, match="mode must be one of none, testing, enforce, not 'strict'"):
        mail_mta_sts_policy(d, "example.test", "strict")
    for bad in (-1, 31557601, True, "86400"):
        with pytest.raises(AnsibleFilterError, match="max_age must be a whole number of seconds"):
            mail_mta_sts_policy(d, "example.test", "testing", bad)


# The mail database as a Galera cluster (issue 28, step G): one 'mail_db'
# host or three or more, in every topology; two are refused; replicas go
# with one primary only.
SHARDED = dict(mail_smtp=["smtp1"], mail_proxy=["proxy1"], mail_store=["ms1", "ms2"])
SINGLE = dict(mail_mx=["mx1"], mail_store=["mx1"])
NFS = dict(mail_mx=["a", "b"], mail_store=["a", "b"], mail_nfs=["n"])


@pytest.mark.parametrize("name, groups, db, replicas, errors", [
    ("sharded", SHARDED, ["ns1", "proxy1", "ms2"], [], []),
    ("sharded", SHARDED, ["db1", "db2", "db3", "db4"], [], []),
    ("single", SINGLE, ["db1", "db2", "db3"], [], []),
    ("nfs_shared", NFS, ["db1", "db2", "db3"], [], []),
    ("sharded", SHARDED, ["db1", "db2"], [],
     ["sharded: group 'mail_db' has 2 hosts (db1, db2); give it one host (a primary, replicas in 'mail_db_replica') "
      "or 3 or more (a Galera cluster: with two nodes, the one left when the other stops has no quorum and serves "
      "nothing)"]),
    ("single", SINGLE, ["db1", "db2"], [], ["single: group 'mail_db' has 2 hosts (db1, db2)"]),
    ("nfs_shared", NFS, ["db1", "db2"], [], ["nfs_shared: group 'mail_db' has 2 hosts (db1, db2)"]),
    ("sharded", SHARDED, ["db1", "db2", "db3"], ["db4"],
     ["sharded: group 'mail_db_replica' (db4) beside 3 'mail_db' hosts (db1, db2, db3): those make a Galera "
      "cluster, every node of which serves reads and writes; replicas go with one 'mail_db' primary (add the "
      "hosts to 'mail_db' as nodes, or keep one 'mail_db' host)"]),
    ("nfs_shared", NFS, ["db1", "db2", "db3"], ["db4"], ["nfs_shared: group 'mail_db_replica' (db4) beside 3"]),
])
def test_galera_database_counts(name, groups, db, replicas, errors):
    d = decide(mail_db=db, mail_db_replica=replicas, **groups)
    assert d["topology"] == name
    assert len(d["errors"]) == len(errors), d["errors"]
    for want, got in zip(errors, d["errors"]):
        assert got.startswith(want), got
