"""playbooks/site.yml refuses an inventory that is not a topology, before any
host is contacted, with a message naming the problem.

The inventories point at hosts that do not exist: a run that got past the
topology check would fail differently (unreachable), so the assertions prove
that the check stopped it first.
"""

import sys
from pathlib import Path

import pytest
import yaml

from mailstack_testlib import CONFIG, ansible_env, playbook as ansible_playbook, recap

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
    ("    mailstack_domains: [example.test, example.net, example.net]",
     "Refuse an inventory the roles cannot be wired from", "mailstack_domains[2] (example.net): the domain is listed twice"),
    ("    mailstack_domains: [example.test, {name: example.net, dmarc: reject}]",
     "Refuse an inventory the roles cannot be wired from", "mailstack_domains[1] (example.net): unknown option(s) dmarc"),
], ids=["wrong-type", "unknown-choice", "bad-network", "bad-address", "domain-twice", "domain-unknown-field"])
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


# A complete sharded inventory on this machine (connection local, --check):
# every secret and source its roles require is set, each to a distinctive
# value that must never appear in the output. proxy1 installs provided
# certificates (fake PEM: the pre-flight checks only their form).
SECRETS = {
    "mail_database_admin_password": "AdminPw-q7Zr1",
    "mail_database_postfix_password": "PostfixPw-x3Kd8",
    "mail_database_dovecot_password": "DovecotPw-m5Tn2",
    "dovecot_doveadm_password": "DoveadmPw-w9Hs4",
    "mail_database_roundcube_password": "RoundcubePw-c2Ne5",
    "mail_database_mover_password": "MoverPw-h7Qa3",
    "webmail_des_key": "DesKey-b6Vy0-24chars-abc",
}
CERTIFICATE = "-----BEGIN CERTIFICATE-----\nCertBody-k2Pj7\n-----END CERTIFICATE-----\n"
PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\nKeyBody-f8Lc3\n-----END PRIVATE KEY-----\n"
assert len(SECRETS["webmail_des_key"]) == 24

SHARDED_HOSTS = {"ns1": ["mail_dns", "mail_db", "mail_filter"], "smtp1": ["mail_smtp"], "smtp2": ["mail_smtp"],
                 "proxy1": ["mail_proxy", "mail_webmail"], "ms1": ["mail_store"], "ms2": ["mail_store"]}
# nfs_shared on an iSCSI LUN: the CHAP secret on the target and the NFS server.
NFS_SAN_HOSTS = {"ns1": ["mail_dns", "mail_db"], "nfs1": ["mail_nfs"], "san1": ["mail_san"],
                 "ms1": ["mail_mx", "mail_store"], "ms2": ["mail_mx", "mail_store"]}
CHAP_SECRET = "ChapSecret-r4Gu6"


def local_inventory(hosts_groups, common, proxy1=None, without=None, **wrong):
    """An inventory on this machine as YAML, without one variable (of group
    all, or of proxy1), or with wrong values (of group all)."""
    common = dict(common, ansible_connection="local", ansible_python_interpreter=sys.executable)
    proxy1 = dict(proxy1 or {})
    common.pop(without, None)
    proxy1.pop(without, None)
    common.update(wrong)
    hosts = dict((name, {"mailstack_address": "10.0.0.%d" % (i + 1)}) for i, name in enumerate(hosts_groups))
    if "proxy1" in hosts:
        hosts["proxy1"].update(proxy1)
    groups = {}
    for name, member_of in hosts_groups.items():
        for group in member_of:
            groups.setdefault(group, {"hosts": {}})["hosts"][name] = None
    return yaml.safe_dump({"all": {"vars": common, "hosts": hosts, "children": groups}})


def sharded_inventory(without=None, **wrong):
    common = dict(SECRETS, mailstack_domain="example.test", tls_source="lab_ca",
                  content_filter_clamav_signature_files=["/srv/clamav/main.cvd"])
    proxy1 = {"tls_source": "provided", "tls_certificate": CERTIFICATE, "tls_private_key": PRIVATE_KEY}
    return local_inventory(SHARDED_HOSTS, common, proxy1, without, **wrong)


def nfs_san_inventory(without=None, **wrong):
    common = dict(SECRETS, mailstack_domain="example.test", tls_source="lab_ca", mailstack_mta_sts_mode="off",
                  iscsi_target_chap_password=CHAP_SECRET)
    return local_inventory(NFS_SAN_HOSTS, common, None, without, **wrong)


REQUIRED_TASK = "TASK [Check the options each role requires on this host]"


@pytest.mark.parametrize("without, refused", [
    ("mailstack_domain", [("ns1", "mailstack_domain"), ("smtp1", "mailstack_domain"), ("smtp2", "mailstack_domain")]),
    ("mail_database_admin_password", [("ns1", "mail_database_admin_password")]),
    # Copied unread to Postfix's and Dovecot's hosts: refused there too.
    ("mail_database_postfix_password", [("ns1", "mail_database_postfix_password"), ("smtp1", "postfix_db_password"),
                                        ("smtp2", "postfix_db_password")]),
    ("mail_database_dovecot_password", [("ns1", "mail_database_dovecot_password"), ("proxy1", "dovecot_db_password"),
                                        ("ms1", "dovecot_db_password"), ("ms2", "dovecot_db_password")]),
    ("dovecot_doveadm_password", [("proxy1", "dovecot_doveadm_password"), ("ms1", "dovecot_doveadm_password"),
                                  ("ms2", "dovecot_doveadm_password")]),
    ("webmail_des_key", [("proxy1", "webmail_des_key")]),
    # Roundcube's account: made on the primary, used by the webmail host.
    ("mail_database_roundcube_password", [("ns1", "mail_database_roundcube_password"),
                                          ("proxy1", "webmail_db_password")]),
    # The moves' account: made on the primary, logged in with on the shards.
    ("mail_database_mover_password", [("ns1", "mail_database_mover_password"), ("ms1", "mail_database_mover_password"),
                                      ("ms2", "mail_database_mover_password")]),
    ("content_filter_clamav_signature_files", [("ns1", "content_filter_clamav_signature_files")]),
    ("tls_certificate", [("proxy1", "tls_certificate")]),
    ("tls_private_key", [("proxy1", "tls_private_key")]),
])
def test_a_missing_requirement_stops_before_any_change(tmp_path, without, refused):
    result = run_site(tmp_path, sharded_inventory(without), "--check", "-v")
    assert_refused_in_the_pre_flight(result, refused, SHARDED_HOSTS)


@pytest.mark.parametrize("inventory, refused, value", [
    (sharded_inventory(webmail_des_key="DesKey-b6Vy0-23chars-ab"), [("proxy1", "webmail_des_key")],
     "DesKey-b6Vy0-23chars-ab"),
    (nfs_san_inventory(without="iscsi_target_chap_password"),
     [("san1", "iscsi_target_chap_password"), ("nfs1", "nfs_server_iscsi_chap_password")], CHAP_SECRET),
    (nfs_san_inventory(iscsi_target_chap_password="Short-z1Q"),
     [("san1", "iscsi_target_chap_password"), ("nfs1", "nfs_server_iscsi_chap_password")], "Short-z1Q"),
], ids=["des-key-23-characters", "nfs-san-without-chap", "nfs-san-chap-too-short"])
def test_a_wrong_requirement_stops_before_any_change(tmp_path, inventory, refused, value):
    result = run_site(tmp_path, inventory, "--check", "-v")
    hosts = NFS_SAN_HOSTS if "nfs1" in dict(refused) else SHARDED_HOSTS
    assert_refused_in_the_pre_flight(result, refused, hosts)
    assert value not in result.stdout + result.stderr


def assert_refused_in_the_pre_flight(result, refused, hosts):
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert REQUIRED_TASK in out, out
    for host, option in refused:
        assert "%s: %s is unset or breaks the rule" % (host, option) in out, out
    # Nothing after the pre-flight: no role's play, no role's task, no change.
    assert out.count("PLAY [") == 1 and "TASK [mailops.mailstack." not in out, out
    for host in hosts:
        assert recap(out, host)["changed"] == "0", out
    assert not any(value in out for value in list(SECRETS.values()) + ["CertBody", "KeyBody", CHAP_SECRET]), out


@pytest.mark.parametrize("inventory, checked", [
    (sharded_inventory(), "ok: [proxy1] => (item=webmail_des_key)"),
    # The list of domains without mailstack_domain: the wiring gives each host the primary.
    (sharded_inventory(without="mailstack_domain", mailstack_domains=[
        "example.test", {"name": "example.net", "dkim_selector": "{host}-net"}]),
     "ok: [smtp2] => (item=mailstack_domain)"),
    (nfs_san_inventory(), "ok: [nfs1] => (item=nfs_server_iscsi_chap_password)"),
], ids=["sharded", "sharded-two-domains", "nfs-san"])
def test_the_pre_flight_passes_and_never_shows_a_secret(tmp_path, inventory, checked):
    """The complete inventory passes wire.yml (the pre-flight alone: no role
    runs), and no secret's value is in its verbose output."""
    result = run_site(tmp_path, inventory, "--check", "-v", playbook=REPO / "playbooks" / "wire.yml")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert REQUIRED_TASK in out and checked in out, out
    for value in list(SECRETS.values()) + ["CertBody", "KeyBody", CHAP_SECRET]:
        assert value not in out, "%s is in the output:\n%s" % (value, out)
