"""The ports each host opens (the wiring's listens, wire()'s 'listens'),
checked against the connections the wiring itself configures, on every
example inventory (inventories/examples/<topology>):

- every connection one host's options make to another host (a database
  host, a filter, an LMTP, SASL, doveadm, NFS or iSCSI server, the primary a
  backup MX mirrors) reaches a port that host opens to it;
- every port open to named hosts is opened only to hosts that connect to it
  (issue 30's firewall will open each internal port to exactly these);
- and, named per topology, the ports an operator asks about first.
"""

import functools
import ipaddress
import os
import re

import pytest

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.registry import role_default
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.wire import wire

from mailstack_testlib import load_script

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
port_tables = load_script("port_tables")

TOPOLOGIES = ("single", "backup_mx", "nfs_shared", "sharded")
# The database clients (Postfix's and Dovecot's maps, mailbox_move) use MariaDB's port.
DATABASE_PORT = 3306


class Site(object):
    """An example, wired: each host's effective options (the inventory's,
    else the wiring's, else the role's default) and listens."""

    def __init__(self, topology):
        self.groups, self.hostvars = port_tables.load(topology)
        self.wiring = wire(self.groups, self.hostvars)
        assert self.wiring["errors"] == [], self.wiring["errors"]
        self.hosts = self.wiring["hosts"]
        self.by_address = dict((str(self.hostvars[h]["mailstack_address"]), h) for h in self.hosts)

    def value(self, host, name):
        if name in self.hostvars[host]:
            return self.hostvars[host][name]
        if name in self.hosts[host]["options"]:
            return self.hosts[host]["options"][name]
        return role_default(name)

    def host_of(self, address):
        return self.by_address[str(ipaddress.ip_address(str(address).strip("[]")))]

    def listens(self, host, port):
        return [item for item in self.hosts[host]["listens"] if item["port"] == int(port) and item["proto"] == "tcp"]


@pytest.fixture(scope="module", params=TOPOLOGIES)
def site(request):
    return Site(request.param)


def _database(site, host, roles):
    """Postfix's and Dovecot's maps, a replica's replication."""
    value = functools.partial(site.value, host)
    for role, option in (("postfix", "postfix_db_hosts"), ("dovecot", "dovecot_db_hosts")):
        for server in (value(option) if role in roles else []):
            if server != "localhost":
                yield server, DATABASE_PORT, option
    if "mail_database" in roles and value("mail_database_mode") == "replica":
        yield value("mail_database_primary"), DATABASE_PORT, "mail_database_primary"


def _postfix(site, host, roles):
    value = functools.partial(site.value, host)
    if "postfix" not in roles:
        return
    if value("postfix_content_filter") and value("postfix_content_filter_host") != "127.0.0.1":
        yield value("postfix_content_filter_host"), value("postfix_content_filter_port"), "content filter"
    sasl = re.match(r"^inet:\[?([^\]]+)\]?:(\d+)$", value("postfix_sasl_path"))
    if sasl and value("postfix_mode") == "router":
        yield sasl.group(1), sasl.group(2), "postfix_sasl_path"
    if value("postfix_mode") == "router":
        primary = site.groups["mail_db"][0]
        for shard in site.value(primary, "mail_database_mailbox_hosts"):
            yield shard["address"], value("postfix_shard_lmtp_port"), "LMTP to %s" % shard["name"]


def _dovecot(site, host, roles):
    value = functools.partial(site.value, host)
    if "dovecot" not in roles:
        return
    stores = [s for s in site.groups["mail_store"] if s != host]
    if value("dovecot_mode") == "proxy":
        for store in site.groups["mail_store"]:
            for port in (143, 110):
                yield site.hostvars[store]["mailstack_address"], port, "proxied login to %s" % store
        return
    if value("dovecot_lmtp_proxy"):
        for store in stores:
            yield site.value(store, "dovecot_lmtp_listen")[0], site.value(store, "dovecot_lmtp_port"), "LMTP proxy"
    if value("dovecot_login_proxy_maybe"):
        # A login for a user pinned to another store is proxied there (no port: 143 and 110).
        for store in stores:
            for port in (143, 110):
                yield site.hostvars[store]["mailstack_address"], port, "login proxied to %s" % store
    if value("dovecot_doveadm_listen"):
        # mailbox_move on this shard: dsync from the source, kicks on the proxies.
        for other in stores + site.groups["mail_proxy"]:
            yield site.value(other, "dovecot_doveadm_listen")[0], site.value(other, "dovecot_doveadm_port"), "doveadm"


def _storage(site, host, roles):
    value = functools.partial(site.value, host)
    for mount in (value("nfs_client_mounts") if "nfs_client" in roles else []):
        yield mount["src"].rsplit(":", 1)[0], 2049, "nfs_client_mounts"
    if "nfs_server" in roles and value("nfs_server_store") == "iscsi":
        yield value("nfs_server_iscsi_portal"), 3260, "nfs_server_iscsi_portal"
    if "backup_mx" in roles:
        yield value("backup_mx_primary_address"), value("backup_mx_ssh_port"), "backup_mx_primary_address"
    if "content_filter" in roles:
        for client in value("content_filter_clients"):
            if client != "127.0.0.1":
                yield client, value("content_filter_reinject_port"), "reinjection"


def connections(site):
    """[(from, to, port, why)]: what the hosts' options make them connect to."""
    found = []
    for host, wired in sorted(site.hosts.items()):
        for make in (_database, _postfix, _dovecot, _storage):
            for address, port, why in make(site, host, wired["roles"]):
                target = site.host_of(address)
                if target != host:
                    found.append((host, target, int(port), why))
    return found


def test_every_connection_the_wiring_configures_reaches_an_open_port(site):
    problems = []
    for source, target, port, why in connections(site):
        if not any(source in item["peers"] or "internet" in item["peers"] for item in site.listens(target, port)):
            problems.append("%s -> %s:%d (%s): not open to %s" % (source, target, port, why, source))
    assert problems == []


def test_every_internal_port_is_open_only_to_hosts_that_connect_to_it(site):
    used = set((source, target, port) for source, target, port, _why in connections(site))
    problems = []
    for host, wired in sorted(site.hosts.items()):
        for item in wired["listens"]:
            for peer in item["peers"]:
                if peer not in ("internet", "controller") and (peer, host, item["port"]) not in used:
                    problems.append("%s:%d/%s (%s) is open to %s, which never connects to it" % (
                        host, item["port"], item["proto"], item["service"], peer))
    assert problems == []


def test_every_port_is_opened_by_a_role_the_host_runs_and_reached_over_ssh(site):
    for host, wired in site.hosts.items():
        assert all(item["role"] in wired["roles"] for item in wired["listens"]), host
        ssh = [item for item in wired["listens"] if item["port"] == 22 and "controller" in item["peers"]]
        assert len(ssh) == 1, host


def opened(site, host):
    """{(port, proto): peers} of one host."""
    return dict(((item["port"], item["proto"]), sorted(item["peers"])) for item in site.hosts[host]["listens"]
                if item["peers"] != ["controller"])


def runs(site, *roles):
    return sorted(h for h, wired in site.hosts.items() if set(roles) & set(wired["roles"]))


def test_sharded_ports():
    site = Site("sharded")
    # The database: exactly the hosts whose roles read it (Postfix, Dovecot).
    assert opened(site, "db1") == {(3306, "tcp"): runs(site, "postfix", "dovecot")}
    assert runs(site, "postfix", "dovecot") == ["ms1", "ms2", "proxy1", "smtp1", "smtp2"]
    # LMTP on each shard: the SMTP tier and the other shard (a moved user's mail).
    assert opened(site, "ms1")[(24, "tcp")] == ["ms2", "smtp1", "smtp2"]
    assert opened(site, "ms2")[(24, "tcp")] == ["ms1", "smtp1", "smtp2"]
    # Logins only from the proxy and the other shard (a login for a user
    # moved there, passed on); doveadm from the other shard (moves).
    assert opened(site, "ms1") == {(143, "tcp"): ["ms2", "proxy1"], (110, "tcp"): ["ms2", "proxy1"],
                                   (24, "tcp"): ["ms2", "smtp1", "smtp2"], (24245, "tcp"): ["ms2"]}
    assert opened(site, "proxy1") == {
        (143, "tcp"): ["internet"], (993, "tcp"): ["internet"], (110, "tcp"): ["internet"], (995, "tcp"): ["internet"],
        (12345, "tcp"): ["smtp1", "smtp2"], (24245, "tcp"): ["ms1", "ms2"],
        (80, "tcp"): ["internet"], (443, "tcp"): ["internet"]}
    assert opened(site, "smtp1") == {(25, "tcp"): ["internet"], (587, "tcp"): ["internet"], (465, "tcp"): ["internet"],
                                     (10025, "tcp"): ["filter1"]}
    assert opened(site, "filter1") == {(10024, "tcp"): ["smtp1", "smtp2"]}
    assert opened(site, "ns1") == {(53, "udp"): ["internet"], (53, "tcp"): ["internet"]}


def test_nfs_shared_ports():
    site = Site("nfs_shared")
    assert opened(site, "nfs1") == {(2049, "tcp"): ["ms1", "ms2"]}
    assert opened(site, "san1") == {(3260, "tcp"): ["nfs1"]}
    assert opened(site, "ns1")[(3306, "tcp")] == ["ms1", "ms2"]
    assert opened(site, "ms1")[(24, "tcp")] == ["ms2"]


def test_backup_mx_ports():
    site = Site("backup_mx")
    # The replica on the backup replicates from the primary (and the
    # backup's Postfix reads it while its replica is down); the backup's
    # mirror logs in over SSH.
    assert opened(site, "mx1")[(3306, "tcp")] == ["mx2"]
    assert [item["peers"] for item in site.hosts["mx1"]["listens"] if item["port"] == 22] == [["controller"], ["mx2"]]
    # The replica answers the primary's lookups while the primary's server is down.
    assert opened(site, "mx2") == {(25, "tcp"): ["internet"], (3306, "tcp"): ["mx1"]}


def test_single_ports():
    site = Site("single")
    # The database on the mail server serves only its own host: no port.
    assert (3306, "tcp") not in opened(site, "mx1")
    assert opened(site, "mx1")[(10025, "tcp")] == ["filter1"]
    assert opened(site, "filter1") == {(10024, "tcp"): ["mx1"]}
