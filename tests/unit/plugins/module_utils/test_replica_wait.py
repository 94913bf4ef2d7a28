"""The decision of module_utils/replica_wait.py against fake replicas: a
replica that applied the commit, one that is behind (a stopped SQL thread:
MASTER_GTID_WAIT times out), one that refuses the connection (down), one
that times out connecting or refuses the login; the time shared by all."""

import pytest

from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import pymysql
from ansible_collections.mailops.mailstack.plugins.module_utils.replica_wait import (
    ReplicaLagError, behind, readers_servers, refused, wait_replicas,
)

GTID = "0-1-123"


class FakeCursor(object):
    def __init__(self, conn):
        self.conn = conn

    def execute(self, sql, args=()):
        self.conn.asked.append((sql, args))
        if "MASTER_GTID_WAIT" in sql:
            self.conn.waits.append(args[1])
            self.rows = [(0 if self.conn.applied else -1,)]
        else:
            self.rows = [(self.conn.position,)]

    def fetchall(self):
        return self.rows

    def close(self):
        pass


class FakeConn(object):
    def __init__(self, applied, position):
        self.applied, self.position = applied, position
        self.asked, self.waits, self.closed = [], [], False

    def cursor(self):
        return FakeCursor(self)

    def close(self):
        self.closed = True


def connect_error(original):
    exc = pymysql.err.OperationalError(2003, "Can't connect to MySQL server on 'r' (%s)" % original)
    exc.original_exception = original
    return exc


def connector(servers):
    def connect(server):
        what = servers[server]
        if isinstance(what, Exception):
            raise what
        return what
    return connect


def test_every_replica_applied_no_warning():
    servers = {"r1": FakeConn(True, GTID), "r2": FakeConn(True, "0-1-130")}
    assert wait_replicas(connector(servers), ["r1", "r2"], GTID, 5) == []
    assert all(c.closed and c.asked[0] == ("SELECT MASTER_GTID_WAIT(%s, %s)", (GTID, c.waits[0]))
               for c in servers.values())


def test_a_replica_behind_fails_naming_it_and_its_lag():
    servers = {"r1": FakeConn(True, GTID), "r2": FakeConn(False, "0-1-120")}
    with pytest.raises(ReplicaLagError) as e:
        wait_replicas(connector(servers), ["r1", "r2"], GTID, 5)
    assert "r2 has not applied it within 5 s (at 0-1-120, 3 transaction(s) behind)" in str(e.value)
    assert "r1" not in str(e.value) and GTID in str(e.value)


def test_a_replica_that_refuses_the_connection_is_passed_over_with_a_warning():
    servers = {"r1": connect_error(ConnectionRefusedError(111, "Connection refused")), "r2": FakeConn(True, GTID)}
    warnings = wait_replicas(connector(servers), ["r1", "r2"], GTID, 5)
    assert len(warnings) == 1 and warnings[0].startswith("replica r1 is down")


@pytest.mark.parametrize("error", [
    connect_error(TimeoutError("timed out")),
    pymysql.err.OperationalError(1045, "Access denied for user 'mail_mover'@'10.0.0.5'"),
])
def test_a_replica_that_times_out_or_refuses_the_login_fails(error):
    with pytest.raises(ReplicaLagError) as e:
        wait_replicas(connector({"r1": error}), ["r1"], GTID, 5)
    assert "r1 does not answer as a replica" in str(e.value)


def test_the_timeout_is_shared_by_all_replicas():
    now = [100.0]
    servers = {"r1": FakeConn(True, GTID), "r2": FakeConn(True, GTID)}

    def connect(server):
        now[0] += 2  # each answer takes 2 s
        return servers[server]
    wait_replicas(connect, ["r1", "r2"], GTID, 5, clock=lambda: now[0])
    assert servers["r1"].waits == [3.0] and servers["r2"].waits == [1.0]


def test_nothing_to_wait_for_without_replicas_or_binary_log():
    assert wait_replicas(connector({}), [], GTID, 5) == []
    assert wait_replicas(connector({}), ["r1"], "", 5) == []


def test_behind_and_refused():
    assert behind("0-1-10", "1-2-50,0-1-7") == 3
    assert behind("0-1-10,1-2-3", "0-1-12") == 0
    assert behind("0-1-10", "") is None
    assert refused(connect_error(FileNotFoundError(2, "No such file")))
    assert refused(connect_error(OSError(113, "No route to host")))
    assert not refused(connect_error(TimeoutError("timed out")))
    assert not refused(pymysql.err.OperationalError(1045, "Access denied"))


class Conn(object):
    host = "10.0.0.53"


def test_the_servers_default_to_the_readers_list_but_the_writer():
    p = dict(replicas=None, login_unix_socket=None, login_host=["localhost", "10.0.0.53", "10.0.0.54"])
    assert readers_servers(p, Conn()) == ["localhost", "10.0.0.54"]
    assert readers_servers(dict(p, replicas=["r9"]), Conn()) == ["r9"]
    assert readers_servers(dict(p, replicas=[]), Conn()) == []
    assert readers_servers(dict(p, login_unix_socket="/run/mysqld/mysqld.sock"), Conn()) == []


# Galera: the other nodes waited for with WSREP_SYNC_WAIT_UPTO_GTID.
class FakeNode(FakeConn):
    def __init__(self, outcome, seen=GTID):
        FakeConn.__init__(self, outcome == "applied", seen)
        self.outcome = outcome

    def cursor(self):
        node = self

        class Cursor(FakeCursor):
            def execute(self, sql, args=()):
                node.asked.append((sql, args))
                if "WSREP_SYNC_WAIT_UPTO_GTID" in sql:
                    node.waits.append(args[1])
                    if node.outcome == "behind":
                        raise pymysql.err.OperationalError(1205, "Lock wait timeout exceeded")
                    if node.outcome == "non-primary":
                        raise pymysql.err.OperationalError(1047, "WSREP has not yet prepared node for application use")
                    self.rows = [(1,)]
                else:
                    self.rows = [(node.position.encode(),)]
        return Cursor(self)


def test_galera_nodes_that_applied_and_one_outside_the_primary_component():
    servers = {"n2": FakeNode("applied"), "n3": FakeNode("non-primary")}
    warnings = wait_replicas(connector(servers), ["n2", "n3"], GTID, 5, galera=True)
    # Named as what it is: a node of the cluster, not a replica of a primary.
    assert len(warnings) == 1 and warnings[0].startswith("node n3 is down (not in the Primary component"), warnings
    assert servers["n2"].asked[0] == ("SELECT WSREP_SYNC_WAIT_UPTO_GTID(%s, %s)", (GTID, 5))
    assert all(isinstance(c.waits[0], int) for c in servers.values())


def test_a_galera_node_behind_fails_naming_it_and_what_it_has_seen():
    servers = {"n2": FakeNode("applied"), "n3": FakeNode("behind", "0-1-120")}
    with pytest.raises(ReplicaLagError) as e:
        wait_replicas(connector(servers), ["n2", "n3"], GTID, 5, galera=True)
    assert "n3 has not applied it within 5 s (at 0-1-120, 3 transaction(s) behind)" in str(e.value)
    assert str(e.value).startswith("the commit %s written through another node of the Galera cluster: " % GTID)
    assert "primary" not in str(e.value) and "replica" not in str(e.value), str(e.value)
