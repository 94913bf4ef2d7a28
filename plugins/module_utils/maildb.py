# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Connection to the mail database and helpers shared by the provisioning modules.

Everything that talks to MariaDB goes through here: the connection options
every such module shares (documented once in the ``mailops.mailstack.maildb``
doc fragment), the PyMySQL connection, the schema version check, batched SQL helpers, the
result counters and the error collector that names the offending entry and
field.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import random
import time
import traceback

from ansible.module_utils.basic import missing_required_lib

PYMYSQL_IMP_ERR = None
try:
    import pymysql
    HAS_PYMYSQL = True
except ImportError:
    pymysql = None
    HAS_PYMYSQL = False
    PYMYSQL_IMP_ERR = traceback.format_exc()

# Rows per multi-row INSERT / IN (...) list.
BATCH_SIZE = 1000
# Entries shown in an error message / in a diff before "N more".
MAX_ERRORS_SHOWN = 20
MAX_ERRORS_RETURNED = 1000
MAX_DIFF_ITEMS = 1000


# Where the mail database modules connect, over TCP, when neither login_host
# nor login_unix_socket is given.
DEFAULT_HOST = 'localhost'


def mariadb_connection_spec():
    """The connection options of every module that talks to MariaDB, with their one set of defaults.

    Documented once (doc fragment ``mailops.mailstack.maildb``; the mail database
    modules add its part ``mail_database``), as community.mysql's mysql_common_argument_spec.
    login_host has no default: without it and without login_unix_socket the mail
    database modules connect to DEFAULT_HOST over TCP (connect), the replication
    modules, which run on the replica host, to its socket (replication.replica_target).
    """
    return dict(
        login_host=dict(type='str'),
        login_port=dict(type='int', default=3306),
        login_user=dict(type='str'),
        login_password=dict(type='str', no_log=True),
        login_unix_socket=dict(type='str'),
        connect_timeout=dict(type='int', default=30),
    )


def maildb_argument_spec():
    """Options of every mail database module: the connection (login_host a
    list: connect tries each), TLS and the database (doc fragment maildb)."""
    spec = mariadb_connection_spec()
    spec.update(
        login_host=dict(type='list', elements='str'),
        ca_cert=dict(type='path'),
        database=dict(type='str', default='mail', aliases=['login_db']),
    )
    return spec


# A transaction that lost a Galera certification conflict (another node
# committed a change of the same rows first) ends with 1213 "Deadlock found"
# at any statement or at COMMIT; so does an InnoDB deadlock on one server.
# The writers run the transaction again, from its reads: WRITE_RETRIES more
# times at most, after a pause of WRITE_RETRY_PAUSE seconds times the
# attempt, with jitter (two writers that met once do not meet again).
DEADLOCK = 1213
WRITE_RETRIES = 3
WRITE_RETRY_PAUSE = 0.2


def is_deadlock(exc):
    """Whether a PyMySQL error is 1213 (a certification conflict or a deadlock)."""
    return isinstance(exc, pymysql.err.MySQLError) and bool(exc.args) and exc.args[0] == DEADLOCK


def retry_pause(attempt):
    """Sleep before retry attempt (1, 2, ...): the attempt's share of the
    pause, half of it random."""
    time.sleep(WRITE_RETRY_PAUSE * attempt * (0.5 + random.random()))


class MailDBError(Exception):
    """An error with a message fit for the user."""


def require_pymysql(module):
    if not HAS_PYMYSQL:
        module.fail_json(msg=missing_required_lib('PyMySQL'), exception=PYMYSQL_IMP_ERR)


def connect(module, database=True):
    """Open a PyMySQL connection from the module's shared options: to the
    socket, else to the first server of login_host (in its order) that
    answers and takes writes (usable); the error names every server tried.

    autocommit is off: the caller commits once at the end or rolls back.
    """
    require_pymysql(module)
    p = module.params
    kwargs = connect_args(p, database)
    if p['login_unix_socket']:
        targets = [(p['login_unix_socket'], dict(unix_socket=p['login_unix_socket']))]
    else:
        targets = [('%s:%s' % (host, p['login_port']), dict(host=host, port=p['login_port']))
                   for host in (p['login_host'] or [DEFAULT_HOST])]
    conn, failures = first_usable(targets, kwargs)
    if conn is None:
        module.fail_json(msg='Cannot connect to the mail database %r as %r: %s'
                         % (p['database'], p['login_user'], '; '.join(failures)))
    return conn


def connect_args(p, database=True):
    """PyMySQL's arguments from the shared options, but the server."""
    kwargs = dict(
        user=p['login_user'],
        password=p['login_password'] or '',
        connect_timeout=p['connect_timeout'],
        charset='utf8mb4',
        autocommit=False,
    )
    if database:
        kwargs['database'] = p['database']
    if p['ca_cert']:
        kwargs['ssl'] = {'ca': p['ca_cert']}
    return kwargs


def first_usable(targets, kwargs):
    """(connection, failures): the first of targets ((where, connect args))
    that connects and is usable, and why each one before it was passed over."""
    failures = []
    for where, target in targets:
        args = dict(kwargs, **target)
        try:
            conn = pymysql.connect(**args)
        except pymysql.err.MySQLError as e:
            failures.append('%s: %s' % (where, db_error_text(e)))
            continue
        why = unusable(conn)
        if why is None:
            return conn, failures
        conn.close()
        failures.append('%s: %s' % (where, why))
    return None, failures


def unusable(conn):
    """Why a server that took the connection cannot serve the modules, which
    write: a Galera node outside the primary component (wsrep_ready OFF:
    every query would fail with 1047), a read-only server (a replica); None
    when it can."""
    try:
        # A server without Galera reports wsrep_ready OFF too (wsrep_on OFF).
        if _setting(conn, 'SHOW GLOBAL VARIABLES', 'wsrep_on') == 'ON':
            ready = _setting(conn, 'SHOW GLOBAL STATUS', 'wsrep_ready')
            if ready != 'ON':
                return 'not ready (Galera: wsrep_ready is %s)' % ready
        if int(query(conn, 'SELECT @@global.read_only')[0][0]):
            return 'read-only (a replica takes no writes)'
    except pymysql.err.MySQLError as e:
        return db_error_text(e)
    return None


def _setting(conn, show, name):
    """A variable's or a status's value, upper case; None when the server has none."""
    rows = query(conn, show + ' LIKE %s', (name,))
    return str(rows[0][1]).upper() if rows else None


def query(conn, sql, args=()):
    """Every row of one statement, on a cursor of its own."""
    cur = conn.cursor()
    try:
        cur.execute(sql, args)
        return cur.fetchall()
    finally:
        cur.close()


def db_error_text(exc):
    """'(1045) Access denied ...' from a PyMySQL exception."""
    if getattr(exc, 'args', None) and len(exc.args) >= 2:
        return '(%s) %s' % (exc.args[0], exc.args[1])
    return str(exc)


def chunks(seq, size=BATCH_SIZE):
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


def placeholders(n):
    return ', '.join(['%s'] * n)


def select_in(cursor, sql_prefix, values, sql_suffix=''):
    """Run ``sql_prefix IN (...) sql_suffix`` in batches, yield rows."""
    values = list(values)
    for part in chunks(values):
        cursor.execute('%s IN (%s)%s' % (sql_prefix, placeholders(len(part)), sql_suffix), part)
        yield from cursor.fetchall()


def delete_in(cursor, sql_prefix, values):
    """``DELETE ... WHERE col IN (...)`` in batches; returns affected rows."""
    n = 0
    values = list(values)
    for part in chunks(values):
        n += cursor.execute('%s IN (%s)' % (sql_prefix, placeholders(len(part))), part)
    return n


def executemany(cursor, sql, rows):
    """PyMySQL turns ``INSERT ... VALUES (%s, ...)`` into multi-row statements."""
    for part in chunks(rows):
        cursor.executemany(sql, part)


def schema_version(conn):
    """Current schema version (0 when the schema was never created)."""
    cur = conn.cursor()
    try:
        cur.execute("SELECT COUNT(*) FROM information_schema.tables "
                    "WHERE table_schema = DATABASE() AND table_name = 'schema_version'")
        if not cur.fetchone()[0]:
            return 0
        cur.execute('SELECT COALESCE(MAX(version), 0) FROM schema_version')
        return int(cur.fetchone()[0])
    finally:
        cur.close()


def require_schema(module, conn, minimum):
    version = schema_version(conn)
    if version < minimum:
        module.fail_json(msg='The mail schema in database %r is at version %d, this module needs %d: '
                         'apply it first with mailops.mailstack.mail_schema (or the mail_database role).'
                         % (module.params['database'], version, minimum))
    return version


class EntryErrors(object):
    """Collects validation errors; each names the entry (index and key) and the field."""

    def __init__(self, list_name):
        self.list_name = list_name
        self.errors = []

    def add(self, index, key, field, message):
        if index is None:
            where = ''
        elif self.list_name:
            where = '%s[%d]' % (self.list_name, index)
        else:
            where = 'entry %d' % index
        if key:
            where = ('%s (%s)' % (where, key)) if where else str(key)
        self.errors.append('%s: %s: %s' % (where, field, message) if where else '%s: %s' % (field, message))

    def __bool__(self):
        return bool(self.errors)

    __nonzero__ = __bool__

    def fail(self, module, **extra):
        shown = self.errors[:MAX_ERRORS_SHOWN]
        msg = '%d invalid input error(s), nothing was changed: %s' % (len(self.errors), '; '.join(shown))
        if len(self.errors) > len(shown):
            msg += '; ... and %d more (see errors)' % (len(self.errors) - len(shown))
        module.fail_json(msg=msg, errors=self.errors[:MAX_ERRORS_RETURNED], changed=False, **extra)


class Report(object):
    """created/updated/unchanged/removed counters, optional item lists, capped diff."""

    KINDS = ('created', 'updated', 'unchanged', 'removed')

    def __init__(self, report_items=False, want_diff=False):
        self.counts = dict((k, 0) for k in self.KINDS)
        self.report_items = report_items
        self.items = dict((k, []) for k in self.KINDS)
        self.want_diff = want_diff
        self.before = {}
        self.after = {}
        self.diff_count = 0

    def add(self, kind, key, before=None, after=None):
        self.counts[kind] += 1
        if self.report_items:
            self.items[kind].append(key)
        if self.want_diff and kind != 'unchanged':
            self.diff_count += 1
            if self.diff_count <= MAX_DIFF_ITEMS:
                if before is not None:
                    self.before[key] = before
                if after is not None:
                    self.after[key] = after

    @property
    def changed(self):
        return bool(self.counts['created'] or self.counts['updated'] or self.counts['removed'])

    def result(self):
        res = dict(changed=self.changed)
        res.update(self.counts)
        if self.report_items:
            res['items'] = self.items
        if self.want_diff:
            before, after = self.before, self.after
            if self.diff_count > MAX_DIFF_ITEMS:
                note = '... %d more changed entries not shown' % (self.diff_count - MAX_DIFF_ITEMS)
                before = dict(before, _truncated=note)
                after = dict(after, _truncated=note)
            res['diff'] = dict(before=before, after=after)
        return res


def invocation(params, bulk_keys=()):
    """The module_args echoed in results: secrets masked, bulk lists summarised.

    AnsibleModule would otherwise echo every entry of a 100,000-entry list
    (with its passwords) and scan it against every no_log value.
    """
    out = {}
    for k, v in params.items():
        if k in bulk_keys and v is not None:
            out[k] = '<%d entries>' % len(v)
        elif k in ('login_password', 'password', 'password_hash') and v is not None:
            out[k] = 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
        else:
            out[k] = v
    return {'module_args': out}
