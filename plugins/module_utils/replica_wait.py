# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Wait until the replicas that the readers use have applied a commit of the
primary (issue 28, step R: Dovecot and Postfix read the replicas even while
the primary is up).

The caller commits on the primary and takes that commit's GTID in the same
session (last_gtid); each replica is then asked MASTER_GTID_WAIT(gtid,
seconds left), which returns 0 once its gtid_slave_pos has reached it and -1
when the time is up (MariaDB's documentation). What each answer means:

- applied: the replica serves the commit to every reader from now on;
- down: the connection was refused (nothing listens, the socket is gone,
  no route to the host): no reader reads it either while it stays down, so it is passed
  over with a warning (when it comes back it serves what it had until its
  replication catches up: docs/topologies.md says so);
- behind: it answers but did not apply the commit in time (a stopped SQL
  thread, lag): it serves stale data to readers, so the caller fails;
- error: anything else (a timeout connecting, a refused login, TLS): nothing
  proves what it serves, so the caller fails too.

With Galera (the writer's server has wsrep_on) the other nodes are waited
for the same way: the session's WSREP_LAST_WRITTEN_GTID(), then on each
node WSREP_SYNC_WAIT_UPTO_GTID(gtid, seconds), which returns 1 once the
node has applied it and fails with 1205 when the time is up (behind); a
node outside the Primary component (1047) serves no reader (they pass over
it), so it counts as down. A commit is certified on every node before it
returns, but applied on the others a moment later: a reader there could
still see the old shard for that moment.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import time

from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import (
    DEFAULT_HOST, connect_args, db_error_text, pymysql, query,
)


# MariaDB's errors: the wait timed out (WSREP_SYNC_WAIT_UPTO_GTID); the node
# is not in the Primary component.
LOCK_WAIT_TIMEOUT = 1205
NOT_PREPARED = 1047


class ReplicaLagError(Exception):
    """A replica that readers use did not apply the commit in time."""


def last_gtid(conn):
    """The GTID of this session's last commit; the primary's whole position
    when this session's writes changed no row (nothing in the binary log);
    '' without a binary log (no replicas)."""
    return query(conn, "SELECT COALESCE(NULLIF(@@session.last_gtid, ''), @@global.gtid_binlog_pos)")[0][0] or ''


def is_galera(conn):
    """Whether conn's server is a Galera node (wsrep_on)."""
    rows = query(conn, "SHOW GLOBAL VARIABLES LIKE 'wsrep_on'")
    return bool(rows) and str(rows[0][1]).upper() == 'ON'


def last_written_gtid(conn):
    """The GTID of this session's last write in the cluster ('' when none)."""
    value = query(conn, 'SELECT WSREP_LAST_WRITTEN_GTID()')[0][0]
    if isinstance(value, bytes):
        value = value.decode('ascii')
    return value or ''


def refused(exc):
    """The server is down: the connection was refused, its socket is gone,
    or its host is unreachable at once (PyMySQL keeps the OSError of a failed
    connect as original_exception). Not a timeout: a silent host may be
    frozen and serve its stale data when it wakes."""
    original = getattr(exc, 'original_exception', None)
    return isinstance(original, (ConnectionRefusedError, FileNotFoundError)) or \
        getattr(original, 'errno', None) == errno.EHOSTUNREACH


def behind(gtid, position):
    """How many transactions position (a GTID list such as gtid_slave_pos) is
    behind gtid (its first GTID), in that domain; None when position lacks
    the domain."""
    domain, _server, seq = gtid.split(',')[0].strip().split('-')
    for each in (position or '').split(','):
        parts = each.strip().split('-')
        if len(parts) == 3 and parts[0] == domain:
            return max(int(seq) - int(parts[2]), 0)
    return None


def wait_one(connect, server, gtid, deadline, clock):
    """(state, detail) of one replica: applied, down, behind or error (module
    docstring); it may wait until deadline."""
    try:
        conn = connect(server)
    except pymysql.err.MySQLError as e:
        return ('down' if refused(e) else 'error'), db_error_text(e)
    try:
        seconds = max(deadline - clock(), 0.001)
        waited = query(conn, 'SELECT MASTER_GTID_WAIT(%s, %s)', (gtid, seconds))[0][0]
        position = query(conn, 'SELECT @@global.gtid_slave_pos')[0][0]
    except pymysql.err.MySQLError as e:
        return 'error', db_error_text(e)
    finally:
        conn.close()
    return ('applied' if waited == 0 else 'behind'), position


def wait_one_node(connect, server, gtid, deadline, clock):
    """wait_one for a Galera node: applied, down (refused, or outside the
    Primary component), behind (the wait timed out; detail: the last GTID
    it has seen) or error."""
    try:
        conn = connect(server)
    except pymysql.err.MySQLError as e:
        return ('down' if refused(e) else 'error'), db_error_text(e)
    try:
        seconds = max(int(deadline - clock() + 0.999), 1)
        try:
            query(conn, 'SELECT WSREP_SYNC_WAIT_UPTO_GTID(%s, %s)', (gtid, seconds))
            return 'applied', gtid
        except pymysql.err.MySQLError as e:
            code = e.args[0] if e.args else None
            if code == NOT_PREPARED:
                return 'down', 'not in the Primary component: %s' % db_error_text(e)
            if code != LOCK_WAIT_TIMEOUT:
                return 'error', db_error_text(e)
        seen = query(conn, 'SELECT WSREP_LAST_SEEN_GTID()')[0][0]
        return 'behind', seen.decode('ascii') if isinstance(seen, bytes) else seen
    except pymysql.err.MySQLError as e:
        return 'error', db_error_text(e)
    finally:
        conn.close()


def verdict(gtid, answers, timeout, galera=False):
    """Warnings for the replicas (with galera, the other nodes) that are
    down; ReplicaLagError naming every one that is behind or did not answer
    properly. answers: [(server, state, detail)] in the order asked."""
    failed, warnings = [], []
    for server, state, detail in answers:
        if state == 'down' and galera:
            warnings.append('node %s is down (%s): the readers pass over it while it is; it was not waited for'
                            % (server, detail))
        elif state == 'down':
            warnings.append('replica %s is down (%s): no reader reads it while it refuses connections; it was '
                            'not waited for' % (server, detail))
        elif state == 'behind':
            lag = behind(gtid, detail)
            failed.append('%s has not applied it within %s s (at %s%s)' % (
                server, timeout, detail or 'no position',
                ', %d transaction(s) behind' % lag if lag is not None else ''))
        elif state != 'applied':
            failed.append('%s does not answer as a %s (%s)' % (
                server, 'node of the Galera cluster' if galera else 'replica', detail))
    if failed:
        raise ReplicaLagError('the commit %s %s: %s; the readers there would not see it' % (
            gtid, 'written through another node of the Galera cluster' if galera else 'on the primary',
            '; '.join(failed)))
    return warnings


def wait_replicas(connect, servers, gtid, timeout, clock=time.time, galera=False):
    """Wait until every server of servers (replicas, or with galera the
    other nodes) has applied gtid, all of them within timeout seconds in
    all; the warnings (verdict) or ReplicaLagError."""
    if not servers or not gtid:
        return []
    deadline = clock() + timeout
    answers = []
    one = wait_one_node if galera else wait_one
    for server in servers:
        answers.append((server,) + one(connect, server, gtid, deadline, clock))
    return verdict(gtid, answers, timeout, galera=galera)


def connector(params, timeout):
    """connect(server) with the module's account and TLS, to server at
    login_port, without a database (the moves' account has none on a
    replica); connecting waits at most timeout seconds."""
    kwargs = dict(connect_args(params, database=False), autocommit=True,
                  connect_timeout=max(1, min(params['connect_timeout'], int(timeout))))

    def connect(server):
        return pymysql.connect(host=server, port=params['login_port'], **kwargs)
    return connect


def readers_servers(params, conn):
    """The replicas option, else every server of login_host but the one conn
    writes through: each reader lists every server of the site (the wiring's
    db_hosts_for), so the list the module was given names them all."""
    if params.get('replicas') is not None:
        return params['replicas']
    if params['login_unix_socket']:
        return []
    return [h for h in (params['login_host'] or [DEFAULT_HOST]) if h != conn.host]


def waiter(params, conn):
    """The wait of mailbox_move: every replica readers use (readers_servers)
    has applied conn's last commit, within replica_timeout."""
    servers = readers_servers(params, conn)

    def wait():
        timeout = params['replica_timeout']
        if not servers:
            return []
        if is_galera(conn):
            return wait_replicas(connector(params, timeout), servers, last_written_gtid(conn), timeout, galera=True)
        return wait_replicas(connector(params, timeout), servers, last_gtid(conn), timeout)
    return wait
