"""The mail database as a three-node Galera cluster (issue 28, step G;
docs/design/no-spof-plan.md 2.1 and 3): ns1, proxy1 and ms2, as the
scenario's molecule.yml groups them, converged by site.yml.

- one cluster of three, every node Synced in the Primary component, asked
  on every node; the lab's memory settings in force; what converge wrote
  once (the users, the accounts) on every node;
- the group port (4567) of each node speaks TLS with a certificate of the
  site's CA, checked from another node with openssl s_client;
- the joiners (proxy1, ms2) got their state by mariabackup SST over TLS
  (VERIFY_IDENTITY: encrypt=3), and their IST receiver uses TLS;
- the cluster was bootstrapped once: by ns1 at the first converge, not again
  by the idempotence run nor by the check mode runs (the whole lab, then
  --limit ms2, molecule.yml's MAILSTACK_CHECK_LIMIT), which ran before.

Runs before test_sharded.py (file order): it reads the nodes as converge
left them."""

import shlex

import pytest
import testinfra

NODES = ("ns1", "proxy1", "ms2")
JOINERS = ("proxy1", "ms2")
CONFIG = "/etc/mysql/mariadb.conf.d/60-mailstack.cnf"
MIB = 1024 * 1024
# What each node is asked (SHOW GLOBAL STATUS / VARIABLES).
STATUS = ("wsrep_cluster_size", "wsrep_cluster_status", "wsrep_local_state_comment", "wsrep_ready",
          "wsrep_connected", "wsrep_cluster_state_uuid")
VARIABLES = ("innodb_buffer_pool_size", "wsrep_provider_options", "wsrep_sst_method", "wsrep_node_address")


def lab(name):
    return testinfra.get_host("podman://%s" % name)


def sql(node, query, synced=True):
    """A query as root on node's socket, its rows (tab-separated columns);
    synced: it reads what the cluster committed before it (wsrep_sync_wait;
    not for the status, which a node outside the Primary component would
    then refuse to show)."""
    out = lab(node).run("mariadb -N -B -e %s" % shlex.quote(
        ("SET SESSION wsrep_sync_wait = 1; " if synced else "") + query))
    assert out.rc == 0, (node, query, out.stderr)
    return [line.split("\t") for line in out.stdout.splitlines()]


def setting(node, name):
    """A value of the role's rendered configuration on node ('name = value')."""
    out = lab(node).check_output("sed -n %s %s" % (shlex.quote("s/^%s = //p" % name), CONFIG))
    assert out, "%s: no '%s = ' line in %s" % (node, name, CONFIG)
    return out.splitlines()[0].strip()


def journal(node):
    """MariaDB's log on node, the server's and its SST scripts' lines:
    Debian's service logs to the journal (and to error.log only when
    log_error is set, which Debian leaves commented out)."""
    return lab(node).check_output(
        "journalctl -u mariadb --no-pager -o cat; cat /var/log/mysql/error.log 2>/dev/null; true")


@pytest.fixture(scope="module")
def nodes():
    """Each node's wsrep status and variables, asked on that node."""
    seen = {}
    for node in NODES:
        status = dict(sql(node, "SHOW GLOBAL STATUS WHERE Variable_name IN (%s)"
                          % ", ".join("'%s'" % s for s in STATUS), synced=False))
        status.update(sql(node, "SHOW GLOBAL VARIABLES WHERE Variable_name IN (%s)"
                          % ", ".join("'%s'" % v for v in VARIABLES), synced=False))
        seen[node] = status
    return seen


@pytest.fixture(scope="module")
def logs():
    return dict((node, journal(node)) for node in NODES)


def test_one_cluster_of_three_every_node_synced_with_the_labs_memory(nodes):
    for node, status in nodes.items():
        assert (status["wsrep_cluster_size"], status["wsrep_cluster_status"], status["wsrep_local_state_comment"],
                status["wsrep_ready"], status["wsrep_connected"]) == ("3", "Primary", "Synced", "ON", "ON"), \
            (node, status)
        # molecule.yml's group_vars mail_db, through the role's options (the
        # server may round the pool up to its chunk size; Debian's is 128M).
        assert 64 * MIB <= int(status["innodb_buffer_pool_size"]) < 128 * MIB, \
            (node, status["innodb_buffer_pool_size"])
        # "name = value; ..." (some values empty).
        options = dict((k.strip(), v.strip()) for k, _eq, v in
                       (o.partition("=") for o in status["wsrep_provider_options"].split(";")))
        assert options.get("gcache.size") == "64M", (node, options.get("gcache.size"))
        assert status["wsrep_sst_method"] == "mariabackup", (node, status["wsrep_sst_method"])
    # One history: the same cluster state on every node.
    assert len(set(s["wsrep_cluster_state_uuid"] for s in nodes.values())) == 1, nodes
    # What converge wrote once, on ns1 (the domains, the users, the accounts
    # of every reader), every node has.
    written = dict((node, sql(node, "SELECT (SELECT COUNT(*) FROM mail.mailbox), (SELECT COUNT(*) FROM mail.domain), "
                                    "(SELECT COUNT(*) FROM mysql.user WHERE User LIKE 'mail\\_%')")[0])
                   for node in NODES)
    assert int(written["ns1"][0]) >= 4 and len(set(map(tuple, written.values()))) == 1, written


def test_the_group_port_speaks_tls_checked_against_the_site_ca(nodes):
    """From another node, with that node's certificate (the provider asks
    its peers for theirs), the handshake on 4567 verified against the
    site's CA only (socket.ssl_ca). Seen on the controller (one node of
    10.11.19 and galera 26.4.23 with the role's configuration, not in the
    lab): this command passes; red with socket.ssl=no ("wrong version
    number") and against a CA that is not the node's ("certificate verify
    failed")."""
    for client, server in (("ns1", "proxy1"), ("proxy1", "ms2"), ("ms2", "ns1")):
        # wsrep_node_address: the role's mail_database_galera_node_address,
        # where gmcast.listen_addr makes the provider listen (IPv6 in brackets).
        argv = ["openssl", "s_client", "-brief", "-connect", "%s:4567" % nodes[server]["wsrep_node_address"],
                "-CAfile", setting(client, "ssl-ca"), "-verify_return_error",
                "-cert", setting(client, "ssl-cert"), "-key", setting(client, "ssl-key")]
        out = lab(client).run("timeout 20 %s </dev/null" % " ".join(shlex.quote(a) for a in argv))
        text = out.stdout + out.stderr
        assert out.rc == 0 and "Verification: OK" in text and "Protocol version: TLSv1." in text, \
            (client, server, out.rc, text[-2000:])


def test_the_joiners_state_came_by_mariabackup_sst_over_tls(logs):
    """The lines 10.11.19's wsrep_sst_mariabackup and galera-4 (26.4.23) log
    for a state transfer over TLS (in their sources; tests/integration/
    test_galera_config.py sees them on the controller)."""
    for joiner in JOINERS:
        lines = [line for line in logs[joiner].splitlines() if "SST" in line or "IST" in line]
        # That the transfer succeeded is the cluster's state (every node
        # Synced with the same rows: the tests above); these lines say how
        # it came. Not "mariabackup SST completed on joiner": the lab's
        # first run with Galera (2026-12-07) found it in proxy1's journal
        # and not in ms2's, Synced with every row; why is not known.
        for wanted in ("mariabackup SST started on joiner", "MODE='VERIFY_IDENTITY', encrypt='3'",
                       "Decrypting with cert=", "IST receiver using ssl"):
            assert any(wanted in line for line in lines), (joiner, wanted, lines[-30:])
    # The donor of each (ns1 for proxy1; ns1 or proxy1 for ms2) sent it encrypted.
    donors = [node for node in ("ns1", "proxy1") if "Encrypting with cert=" in logs[node]]
    assert donors, dict((node, [line for line in logs[node].splitlines() if "SST" in line][-10:])
                        for node in ("ns1", "proxy1"))


def test_the_cluster_was_bootstrapped_once_by_ns1(logs):
    """galera-4 logs "gcomm: bootstrapping new group" when a node starts a
    new cluster (--wsrep-new-cluster; seen once for one bootstrap on the
    controller), "gcomm: connecting to group" when it joins one. By now
    converge, the idempotence run and the check mode runs (every host, then
    --limit ms2) have run: one bootstrap, ns1's at the first converge. Its
    red (not seen yet: written without the lab): a decision that bootstraps
    on every converge (the idempotence run reports that change first)."""
    bootstraps = dict((node, sum(1 for line in logs[node].splitlines()
                                 if "gcomm: bootstrapping new group" in line)) for node in NODES)
    assert bootstraps == {"ns1": 1, "proxy1": 0, "ms2": 0}, bootstraps
    for joiner in JOINERS:
        assert "gcomm: connecting to group 'mailstack'" in logs[joiner], \
            (joiner, [line for line in logs[joiner].splitlines() if "gcomm:" in line][-10:])
