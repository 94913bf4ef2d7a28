# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""MariaDB GTID replication: what mariadb_replica and mariadb_replica_info share.

The connection options (maildb's one MariaDB connection spec and the name of
the replication connection; doc fragments ``mailops.mailstack.maildb``
and ``mailops.mailstack.mariadb_replica``), the PyMySQL connections to the
replica and to the primary,
``SHOW ALL SLAVES STATUS`` turned into a plain status dict with a health verdict,
GTID position arithmetic, the replication settings compared with what is asked,
the password the replica stores (its master info file), the option files that
hand passwords to mariadb-dump and the mariadb client, and the snapshot pipe
that copies the primary's databases while reading their GTID position.

Everything here that decides something is a pure function (plain data in, a
decision out: what state=started does, from what the pre-flight found, too),
tested in tests/unit/plugins/modules/test_replication_*.py; the modules do the I/O.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import getpass
import os
import re
import subprocess
import tempfile

from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import (
    db_error_text, mariadb_connection_spec, pymysql,
)

DEFAULT_SOCKET = '/run/mysqld/mysqld.sock'
# MariaDB error numbers the modules act on.
ER_ACCESS_DENIED = 1045
ER_NONEXISTING_GRANT = 1141
ER_MASTER_FATAL_ERROR_READING_BINLOG = 1236
# IO thread errors that retrying will not cure: fail at once instead of waiting.
FATAL_IO_ERRNOS = (ER_ACCESS_DENIED, ER_MASTER_FATAL_ERROR_READING_BINLOG)
# Bytes of a dump line kept while looking for the GTID position.
SCAN_LINE_LIMIT = 8192
SNAPSHOT_CHUNK = 1 << 16
STDERR_TAIL = 1500


class ReplicationError(Exception):
    """An error with a message fit for the user; ``extra`` goes into the result."""

    def __init__(self, msg, **extra):
        super(ReplicationError, self).__init__(msg)
        self.msg = msg
        self.extra = extra


# --- options -----------------------------------------------------------------

def replica_argument_spec():
    """Options of the connection to the replica: the one MariaDB connection spec and connection_name.

    Doc fragments mailops.mailstack.maildb and mailops.mailstack.mariadb_replica.
    """
    spec = mariadb_connection_spec()
    spec.update(connection_name=dict(type='str', default=''))
    return spec


def primary_argument_spec():
    """Options of the connections to the primary (mailops.mailstack.mariadb_replica.primary)."""
    return dict(
        primary_host=dict(type='str'),
        primary_port=dict(type='int', default=3306),
        primary_user=dict(type='str', default='replicator'),
        primary_password=dict(type='str', no_log=True),
        primary_login_user=dict(type='str'),
        primary_login_password=dict(type='str', no_log=True),
        primary_ssl=dict(type='bool', default=False),
        primary_ssl_ca=dict(type='path'),
        primary_ssl_verify_server_cert=dict(type='bool', default=False),
    )


def check_common_params(params):
    """Errors (strings naming the option) in the options both modules share."""
    errors = []
    if params['connect_timeout'] is not None and params['connect_timeout'] < 1:
        errors.append('connect_timeout: must be at least 1 (seconds), got %d' % params['connect_timeout'])
    if not 1 <= params['login_port'] <= 65535:
        errors.append('login_port: %d is not a TCP port' % params['login_port'])
    name = params['connection_name']
    if name is None or len(name) > 64:
        errors.append('connection_name: at most 64 characters')
    return errors


# --- connections -------------------------------------------------------------

def replica_target(params):
    """(PyMySQL keyword arguments, 'where' for messages, user for messages) of the replica."""
    kwargs = dict(connect_timeout=params['connect_timeout'], charset='utf8mb4', autocommit=True)
    user = params['login_user']
    if user:
        kwargs['user'] = user
    if params['login_password'] is not None:
        kwargs['password'] = params['login_password']
    # Without login_host and login_unix_socket: the replica host's own socket
    # (the mail database modules use TCP to localhost instead, maildb.connect).
    if params['login_unix_socket'] or not params['login_host']:
        sock = params['login_unix_socket'] or DEFAULT_SOCKET
        kwargs['unix_socket'] = sock
        where = sock
    else:
        kwargs['host'] = params['login_host']
        kwargs['port'] = params['login_port']
        where = '%s:%d' % (params['login_host'], params['login_port'])
    return kwargs, where, user or os_user()


def os_user():
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no passwd entry
        return '(current user)'


def primary_ssl_options(params):
    """PyMySQL's ``ssl`` argument mirroring MASTER_SSL*, or None without TLS."""
    if not params['primary_ssl']:
        return None
    verify = bool(params['primary_ssl_verify_server_cert'])
    sslp = dict(check_hostname=verify, verify_mode=bool(verify or params['primary_ssl_ca']))
    if params['primary_ssl_ca']:
        sslp['ca'] = params['primary_ssl_ca']
    return sslp


def primary_target(params, user, password):
    kwargs = dict(host=params['primary_host'], port=params['primary_port'], user=user,
                  password=password or '', connect_timeout=params['connect_timeout'],
                  charset='utf8mb4', autocommit=True)
    sslp = primary_ssl_options(params)
    if sslp is not None:
        kwargs['ssl'] = sslp
    return kwargs


def open_connection(kwargs):
    """pymysql.connect, raising pymysql errors as they are."""
    return pymysql.connect(**kwargs)


def connect_replica(params):
    """(connection, 'where' for messages, user for messages) of the replica; ReplicationError when it fails."""
    kwargs, where, user = replica_target(params)
    try:
        return open_connection(kwargs), where, user
    except (pymysql.err.MySQLError, OSError) as e:
        raise ReplicationError('Cannot connect to the replica at %s as %r: %s' % (where, user, db_error_text(e)))


def describe_primary(params, user):
    return "the primary %s:%d as %r" % (params['primary_host'], params['primary_port'], user)


# --- server facts and replication status ------------------------------------

FACT_VARIABLES = ('server_id', 'version', 'log_bin', 'gtid_binlog_pos', 'gtid_slave_pos',
                  'gtid_current_pos', 'datadir', 'read_only', 'gtid_strict_mode')


def server_facts(conn):
    """A few global variables of a server, by name."""
    with conn.cursor() as cur:
        cur.execute('SELECT ' + ', '.join('@@GLOBAL.%s' % v for v in FACT_VARIABLES))
        row = cur.fetchone()
    facts = dict(zip(FACT_VARIABLES, row))
    for k in ('gtid_binlog_pos', 'gtid_slave_pos', 'gtid_current_pos', 'version', 'datadir'):
        facts[k] = to_text(facts[k])
    facts['server_id'] = int(facts['server_id'])
    facts['log_bin'] = bool(int(facts['log_bin']))
    facts['read_only'] = bool(int(facts['read_only']))
    facts['gtid_strict_mode'] = bool(int(facts['gtid_strict_mode']))
    facts['is_mariadb'] = 'mariadb' in facts['version'].lower()
    return facts


def to_text(value):
    if value is None:
        return ''
    if isinstance(value, bytes):
        return value.decode('utf-8', 'replace')
    return str(value)


def fetch_slave_rows(conn):
    """Every row of SHOW ALL SLAVES STATUS, as dicts with text values."""
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute('SHOW ALL SLAVES STATUS')
        rows = cur.fetchall()
    return [dict((k, to_text(v) if isinstance(v, bytes) else v) for k, v in r.items()) for r in rows]


def find_connection(rows, connection_name):
    """The row of connection_name (names compare case-insensitively, as in MariaDB), or None."""
    want = (connection_name or '').lower()
    for r in rows:
        if to_text(r.get('Connection_name')).lower() == want:
            return r
    return None


def _int_or_none(value):
    if value is None or value == '':
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _yes(value):
    return to_text(value).lower() == 'yes'


def replica_status(row, facts, connection_name):
    """The status dict both modules return (healthy and problems added by with_health)."""
    st = dict(
        configured=row is not None,
        connection_name=connection_name,
        server_id=facts.get('server_id'),
        gtid_slave_pos=facts.get('gtid_slave_pos', ''),
        gtid_current_pos=facts.get('gtid_current_pos', ''),
        gtid_binlog_pos=facts.get('gtid_binlog_pos', ''),
        read_only=facts.get('read_only'),
    )
    if row is None:
        st.update(primary_host=None, primary_port=None, primary_user=None, primary_server_id=None,
                  using_gtid=None, ssl=None, ssl_ca=None, ssl_verify_server_cert=None, connect_retry=None,
                  io_thread='No', sql_thread='No', io_running=False, sql_running=False, io_state='',
                  sql_state='', seconds_behind=None, sql_delay=None, gtid_io_pos=None,
                  last_io_errno=0, last_io_error='', last_sql_errno=0, last_sql_error='')
        return st
    st.update(
        primary_host=to_text(row.get('Master_Host')),
        primary_port=_int_or_none(row.get('Master_Port')),
        primary_user=to_text(row.get('Master_User')),
        primary_server_id=_int_or_none(row.get('Master_Server_Id')) or None,
        using_gtid=to_text(row.get('Using_Gtid')),
        ssl=_yes(row.get('Master_SSL_Allowed')),
        ssl_ca=to_text(row.get('Master_SSL_CA_File')),
        ssl_verify_server_cert=_yes(row.get('Master_SSL_Verify_Server_Cert')),
        connect_retry=_int_or_none(row.get('Connect_Retry')),
        io_thread=to_text(row.get('Slave_IO_Running')) or 'No',
        sql_thread=to_text(row.get('Slave_SQL_Running')) or 'No',
        io_state=to_text(row.get('Slave_IO_State')),
        sql_state=to_text(row.get('Slave_SQL_Running_State')),
        seconds_behind=_int_or_none(row.get('Seconds_Behind_Master')),
        sql_delay=_int_or_none(row.get('SQL_Delay')),
        gtid_io_pos=to_text(row.get('Gtid_IO_Pos')),
        last_io_errno=_int_or_none(row.get('Last_IO_Errno')) or 0,
        last_io_error=to_text(row.get('Last_IO_Error')),
        last_sql_errno=_int_or_none(row.get('Last_SQL_Errno')) or 0,
        last_sql_error=to_text(row.get('Last_SQL_Error')),
    )
    if row.get('Gtid_Slave_Pos') is not None:
        st['gtid_slave_pos'] = to_text(row.get('Gtid_Slave_Pos'))
    st['io_running'] = st['io_thread'] == 'Yes'
    st['sql_running'] = st['sql_thread'] == 'Yes'
    return st


def thread_problem(status, which):
    """'the IO thread is connecting to the primary, error 2003: ...' or None when it runs."""
    thread = status['%s_thread' % which]
    if thread == 'Yes':
        return None
    errno, error = status['last_%s_errno' % which], status['last_%s_error' % which]
    state = 'connecting to the primary' if thread == 'Connecting' else 'not running'
    msg = 'the %s thread is %s' % (which.upper(), state)
    if errno:
        msg += ', error %d: %s' % (errno, error)
    return msg


def health_problems(status, max_lag=None):
    """What keeps a replica from being healthy; an empty list means healthy."""
    if not status['configured']:
        name = status.get('connection_name')
        return ['replication is not configured%s' % (' for connection %r' % name if name else '')]
    problems = [p for p in (thread_problem(status, 'io'), thread_problem(status, 'sql')) if p]
    if not problems:
        lag = status['seconds_behind']
        if lag is None:
            problems.append('the replication lag is unknown (Seconds_Behind_Master is NULL)')
        elif max_lag is not None and lag > max_lag:
            problems.append('the replica is %d s behind the primary (max_lag %d)' % (lag, max_lag))
    return problems


def with_health(status, max_lag=None):
    problems = health_problems(status, max_lag)
    status = dict(status)
    status['healthy'] = not problems
    status['problems'] = problems
    return status


# --- GTID positions ------------------------------------------------------------

GTID_RE = re.compile(r'^(\d+)-(\d+)-(\d+)$')


def parse_gtid_list(value):
    """'0-1-100,1-2-5' -> {0: (1, 100), 1: (2, 5)} (domain -> (server_id, seq_no))."""
    out = {}
    for part in to_text(value).split(','):
        part = part.strip()
        if not part:
            continue
        m = GTID_RE.match(part)
        if not m:
            raise ValueError('%r is not a GTID (domain-server-sequence)' % part)
        domain, server, seq = (int(x) for x in m.groups())
        if domain in out:
            raise ValueError('domain %d appears twice in %r' % (domain, value))
        out[domain] = (server, seq)
    return out


def format_gtid_list(positions):
    return ','.join('%d-%d-%d' % (d, positions[d][0], positions[d][1]) for d in sorted(positions))


def gtid_behind(current, target):
    """Domains of ``target`` that ``current`` has not reached, as readable strings.

    Within a replication domain sequence numbers only grow, so a position has
    been reached when its domain's sequence number is at least the target's.
    """
    cur, tgt = parse_gtid_list(current), parse_gtid_list(target)
    out = []
    for d in sorted(tgt):
        have = cur.get(d)
        if have is None or have[1] < tgt[d][1]:
            out.append('domain %d: at %s, primary at %d-%d-%d'
                       % (d, '%d-%d-%d' % (d, have[0], have[1]) if have else 'nothing', d, tgt[d][0], tgt[d][1]))
    return out


def gtid_reached(current, target):
    return not gtid_behind(current, target)


def merge_gtid_pos(current, new):
    """gtid_slave_pos with the domains of ``new`` replaced (other connections keep theirs)."""
    merged = parse_gtid_list(current)
    merged.update(parse_gtid_list(new))
    return format_gtid_list(merged)


def shares_domain(slave_pos, primary_pos):
    """Whether gtid_slave_pos holds a position for this primary.

    When the primary has written nothing yet (empty gtid_binlog_pos) any
    position counts.
    """
    slave, primary = parse_gtid_list(slave_pos), parse_gtid_list(primary_pos)
    if not slave:
        return False
    if not primary:
        return True
    return bool(set(slave) & set(primary))


# --- replication settings --------------------------------------------------------

SETTING_KEYS = ('primary_host', 'primary_port', 'primary_user', 'using_gtid', 'ssl', 'ssl_ca',
                'ssl_verify_server_cert', 'connect_retry')


def current_settings(status):
    """The replication settings of a status dict ({} when not configured)."""
    if not status['configured']:
        return {}
    return dict((k, status[k]) for k in SETTING_KEYS)


def desired_settings(params):
    """What the options ask for; None means 'not managed, keep what is there'."""
    ssl = bool(params['primary_ssl'])
    return dict(
        primary_host=params['primary_host'],
        primary_port=params['primary_port'],
        primary_user=params['primary_user'],
        using_gtid='Slave_Pos',
        ssl=ssl,
        ssl_ca=(params['primary_ssl_ca'] or '') if ssl else None,
        ssl_verify_server_cert=bool(params['primary_ssl_verify_server_cert']) if ssl else None,
        connect_retry=params.get('primary_connect_retry'),
    )


def settings_differences(current, desired):
    """Keys of ``desired`` (not None) that differ from ``current``; every key when unconfigured."""
    keys = [k for k in SETTING_KEYS if desired.get(k) is not None]
    if not current:
        return keys
    out = []
    for k in keys:
        have, want = current.get(k), desired[k]
        if k == 'primary_host':
            same = to_text(have).lower() == to_text(want).lower()
        elif k == 'using_gtid':
            same = to_text(have).lower() == to_text(want).lower()
        else:
            same = have == want
        if not same:
            out.append(k)
    return out


def change_master_statement(connection_name, desired, keys, password=None):
    """(sql, args) of CHANGE MASTER for the settings ``keys`` (and the password when given).

    Values travel as query arguments, so the statement text never holds them.
    """
    parts, args = [], [connection_name or '']
    for k in keys:
        v = desired[k]
        if k == 'primary_host':
            parts.append('MASTER_HOST=%s')
            args.append(v)
        elif k == 'primary_port':
            parts.append('MASTER_PORT=%d' % int(v))
        elif k == 'primary_user':
            parts.append('MASTER_USER=%s')
            args.append(v)
        elif k == 'using_gtid':
            parts.append('MASTER_USE_GTID=slave_pos')
        elif k == 'ssl':
            parts.append('MASTER_SSL=%d' % int(bool(v)))
        elif k == 'ssl_ca':
            parts.append('MASTER_SSL_CA=%s')
            args.append(v)
        elif k == 'ssl_verify_server_cert':
            parts.append('MASTER_SSL_VERIFY_SERVER_CERT=%d' % int(bool(v)))
        elif k == 'connect_retry':
            parts.append('MASTER_CONNECT_RETRY=%d' % int(v))
    if password is not None:
        parts.append('MASTER_PASSWORD=%s')
        args.append(password)
    if not parts:
        raise ValueError('nothing to change')
    return 'CHANGE MASTER %s TO ' + ', '.join(parts), tuple(args)


def describe_differences(current, desired, keys):
    out = []
    for k in keys:
        if current:
            out.append('%s %r -> %r' % (k, current.get(k), desired[k]))
        else:
            out.append('%s %r' % (k, desired[k]))
    return out


# --- the password the replica stores ------------------------------------------

def master_info_filename(connection_name):
    """File name of a connection's master info file in the data directory.

    The default connection uses master.info; a named one master-<name>.info,
    the name lower-cased and encoded as MariaDB encodes file names (letters,
    digits and _ as they are, anything else as @ and four hex digits).
    """
    if not connection_name:
        return 'master.info'
    enc = []
    for ch in connection_name.lower():
        if (ch.isalnum() and ord(ch) < 128) or ch == '_':
            enc.append(ch)
        else:
            enc.append('@%04x' % ord(ch))
    return 'master-%s.info' % ''.join(enc)


def parse_master_info(text):
    """host, user, password and port from the text of a MariaDB master info file, or None.

    Its first line holds the number of lines, then come the binary log name and
    position, host, user, password and port, one per line.
    """
    lines = text.split('\n')
    if len(lines) < 7 or not lines[0].strip().isdigit():
        return None
    try:
        port = int(lines[6])
    except ValueError:
        return None
    return dict(host=lines[3], user=lines[4], password=lines[5], port=port)


def read_stored_password(datadir, connection_name, status):
    """The MASTER_PASSWORD the replica stores, or None when it cannot be read.

    The file is trusted only when its host, user and port are those SHOW SLAVE
    STATUS reports for the connection.
    """
    if not datadir or not status['configured']:
        return None
    path = os.path.join(datadir, master_info_filename(connection_name))
    try:
        with open(path, 'rb') as f:
            text = f.read(65536).decode('utf-8', 'surrogateescape')
    except (IOError, OSError):
        return None
    info = parse_master_info(text)
    if not info:
        return None
    if (info['host'] != status['primary_host'] or info['user'] != status['primary_user']
            or info['port'] != status['primary_port']):
        return None
    return info['password']


# --- decisions -------------------------------------------------------------------

def snapshot_decision(mode, configured, slave_pos, primary_pos, tables_by_db, databases):
    """Whether to load a snapshot: (True|False, reason). Raises ReplicationError when unsafe.

    ``tables_by_db``: number of tables (and views) per database on the replica.
    """
    if configured:
        return False, 'replication is already configured; it continues from its own position'
    if shares_domain(slave_pos, primary_pos):
        return False, 'the replica has a GTID position (gtid_slave_pos %s); replication continues from it' % slave_pos
    if mode == 'never':
        return False, 'snapshot=never: replication starts at the primary\'s oldest binary log'
    holding = ['%s (%d tables)' % (d, tables_by_db[d]) for d in databases if tables_by_db.get(d)]
    if not holding:
        return True, 'the replica holds none of %s and has no GTID position' % ', '.join(databases)
    raise ReplicationError(
        'The replica has no GTID position for this primary (gtid_slave_pos %r) but already holds %s: '
        'the module cannot tell where replication should start, so it changed nothing. Drop those '
        'databases on the replica to let it load a snapshot of the primary, set gtid_slave_pos '
        'yourself, or use snapshot=never to replicate from the primary\'s oldest binary log.'
        % (slave_pos, ', '.join(holding)))


def password_decision(update_password, stored, given, status):
    """(change, reason, warning) for MASTER_PASSWORD of an already configured connection.

    The pre-flight check has proven that ``given`` logs in to the primary.
    """
    if status['io_thread'] != 'Yes' and status['last_io_errno'] == ER_ACCESS_DENIED:
        return True, 'the IO thread cannot log in to the primary (error 1045) and primary_password can', None
    if update_password != 'always':
        return False, None, None
    if stored is None:
        return False, None, ('update_password=always: the password the replica stores (its master info file in '
                             'the data directory) cannot be read, so it was left as it is; run the module on the '
                             'replica host as root (become) to compare it')
    if stored != given:
        return True, 'the stored replication password differs from primary_password', None
    return False, None, None


def primary_login_decision(params, errno, error):
    """What a failed login of primary_user to the primary means, before anything changed.

    Returns the account action that cures it ('set primary user password': the
    account exists with another password, create_primary_user and
    update_password=always); raises ReplicationError otherwise. ``error`` is the
    server's error as text.
    """
    p = params
    if errno == ER_ACCESS_DENIED and p['create_primary_user']:
        if p['update_password'] != 'always':
            raise ReplicationError(
                'The replication account %r@%r exists on the primary %s:%d, but primary_password does not '
                'log in with it: %s. With update_password=on_create an existing account keeps its password; '
                'use update_password=always to change it (or check primary_user_host). Nothing was changed.'
                % (p['primary_user'], p['primary_user_host'], p['primary_host'], p['primary_port'], error))
        return 'set primary user password'
    raise ReplicationError('Cannot log in to %s (primary_user): %s. Nothing was changed on the replica.'
                           % (describe_primary(p, p['primary_user']), error))


def primary_refusal(primary_facts, replica_server_id, where):
    """Why nothing can replicate from this primary (a message), or None."""
    if not primary_facts['is_mariadb']:
        return 'The primary %s runs %s, not MariaDB. Nothing was changed.' % (where, primary_facts['version'])
    if not primary_facts['log_bin']:
        return ('The primary %s does not write a binary log (log_bin is OFF), so nothing can '
                'replicate from it. Nothing was changed.' % where)
    if primary_facts['server_id'] == replica_server_id:
        return ('The primary %s and the replica have the same server_id (%d); every server in a '
                'replication topology needs its own. Nothing was changed.' % (where, primary_facts['server_id']))
    return None


def grants_refusal(grants, user, where):
    """The message when primary_user's own grants lack REPLICATION SLAVE, or None."""
    if has_replication_privilege(grants):
        return None
    return ('The account %r on the primary %s lacks the REPLICATION SLAVE privilege '
            '(grant it, or use create_primary_user). Nothing was changed.' % (user, where))


def needs_stored_password(update_password, status, diffs, account_plan):
    """Whether password_plan wants the password the replica stores (read from its data directory)."""
    return (update_password == 'always' and status['configured'] and not diffs
            and 'set primary user password' not in account_plan)


def password_plan(update_password, stored, given, status, diffs, account_plan):
    """(change, reason, warning) for MASTER_PASSWORD with state=started.

    A configured connection whose account gets primary_password on the primary
    is given it too; one whose settings stay is judged by password_decision;
    otherwise CHANGE MASTER runs anyway and sets the password.
    """
    if 'set primary user password' in account_plan and status['configured']:
        return True, 'the replication account gets primary_password on the primary', None
    if status['configured'] and not diffs:
        return password_decision(update_password, stored, given, status)
    return False, None, None


ACCOUNT_NOTES = {
    'create primary user': 'create the replication account %r@%r on the primary',
    'grant primary user': 'grant REPLICATION SLAVE to %r@%r on the primary',
    'set primary user password': 'give %r@%r primary_password on the primary',
}


def started_plan(params, status, account_plan, diffs, password, snapshot):
    """What state=started does, from what the pre-flight found (no I/O).

    ``password``: (change, reason) from password_plan; ``snapshot``: (load, reason)
    from snapshot_decision. Returns a dict: configure, stop, start (booleans),
    steps (the (action, note) pairs in order) and restart_errors (why a thread that
    stopped with an error is started again, or None).
    """
    p, st = params, status
    pw_change, pw_reason = password
    configure = bool(diffs) or pw_change or not st['configured']
    threads_on = st['io_thread'] != 'No' or st['sql_thread'] != 'No'
    stop = configure and st['configured'] and threads_on
    start = configure or st['io_thread'] == 'No' or st['sql_thread'] == 'No'
    account_id = (p['primary_user'], p['primary_user_host'])
    steps = [(a, ACCOUNT_NOTES[a] % account_id) for a in account_plan]
    if stop:
        steps.append(('stop slave', 'stop slave'))
    if snapshot[0]:
        steps.append(('load snapshot', 'load a snapshot of %s (%s)' % (', '.join(p['databases']), snapshot[1])))
        steps.append(('set gtid_slave_pos', 'set gtid_slave_pos'))
    if configure:
        if not st['configured']:
            note = 'configure replication from %s:%d as %r' % (p['primary_host'], p['primary_port'], p['primary_user'])
        else:
            changes = describe_differences(current_settings(st), desired_settings(p), diffs)
            if pw_change:
                changes.append('password (%s)' % pw_reason)
            note = 'change master: %s' % '; '.join(changes)
        steps.append(('change master', note))
    restart_errors = None
    if start and not configure:
        why = [x for x in (thread_problem(st, 'io'), thread_problem(st, 'sql')) if x]
        steps.append(('start slave', 'start replication (%s)' % '; '.join(why)))
        if st['last_sql_errno'] or st['last_io_errno']:
            restart_errors = '; '.join(why)
    elif start:
        steps.append(('start slave', 'start slave'))
    return dict(configure=configure, stop=stop, start=start, steps=steps, restart_errors=restart_errors)


def settings_view(status):
    """The replication settings of a status dict with 'running' ({} when not configured)."""
    view = current_settings(status)
    if view:
        view['running'] = status['io_thread'] != 'No' and status['sql_thread'] != 'No'
    return view


def started_diff(status, desired, password_changed):
    """The diff of state=started: the settings before, and after the run."""
    before = current_settings(status)
    after = dict(before)
    after.update((k, v) for k, v in desired.items() if v is not None)
    after['running'] = True
    if password_changed or not status['configured']:
        after['password_changed'] = True
    return dict(before=settings_view(status), after=after)


def started_message(where, changed, notes, params, seconds_behind, check_mode=False):
    """The msg of state=started."""
    if check_mode:
        if changed:
            return 'Check mode: would %s.' % '; '.join(notes)
        return 'Replication from %s is already as requested; nothing would change.' % where
    if params['wait_timeout'] == 0:
        reached = 'Not waited for (wait_timeout=0)'
    elif params['max_lag'] == 0:
        reached = 'caught up'
    else:
        reached = 'within max_lag (%s s behind)' % seconds_behind
    if changed:
        return 'Replication from %s: %s. %s.' % (where, '; '.join(notes), reached[0].upper() + reached[1:])
    return 'Replication from %s is already as requested and %s; nothing changed.' % (
        where, 'running' if params['wait_timeout'] == 0 else reached)


def has_replication_privilege(grants):
    """Whether SHOW GRANTS lines give REPLICATION SLAVE (or ALL) on *.*."""
    pat = re.compile(r'^GRANT\s+(.*?)\s+ON\s+\*\.\*\s+TO\s', re.I)
    for line in grants:
        m = pat.match(to_text(line))
        if not m:
            continue
        privs = [p.strip().upper() for p in m.group(1).split(',')]
        if 'ALL PRIVILEGES' in privs or 'REPLICATION SLAVE' in privs or 'REPLICATION REPLICA' in privs:
            return True
    return False


# --- option files and the snapshot pipe -----------------------------------------

def option_value(value):
    """A value for a MariaDB option file: double-quoted, with the escapes it reads back."""
    out = []
    for ch in to_text(value):
        if ch == '\\':
            out.append('\\\\')
        elif ch == '"':
            out.append('\\"')
        elif ch == '\n':
            out.append('\\n')
        elif ch == '\r':
            out.append('\\r')
        elif ch == '\t':
            out.append('\\t')
        else:
            out.append(ch)
    return '"%s"' % ''.join(out)


def option_file_text(options):
    """[client] section from (name, value) pairs; a value of True writes the bare option."""
    lines = ['[client]']
    for name, value in options:
        if value is None or value is False:
            continue
        if value is True:
            lines.append(name)
        else:
            lines.append('%s=%s' % (name, option_value(value)))
    return '\n'.join(lines) + '\n'


def write_option_file(options, directory=None):
    """A mode-0600 option file; the caller removes it."""
    fd, path = tempfile.mkstemp(prefix='mariadb-replica-', suffix='.cnf', dir=directory)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, option_file_text(options).encode('utf-8'))
    finally:
        os.close(fd)
    return path


def replica_client_options(params):
    """Option-file entries of the replica login for the mariadb client."""
    kwargs, where, user = replica_target(params)
    opts = []
    if params['login_user']:
        opts.append(('user', params['login_user']))
    if params['login_password'] is not None:
        opts.append(('password', params['login_password']))
    if 'unix_socket' in kwargs:
        opts += [('socket', kwargs['unix_socket']), ('protocol', 'SOCKET')]
    else:
        opts += [('host', kwargs['host']), ('port', str(kwargs['port'])), ('protocol', 'TCP')]
    opts.append(('connect-timeout', str(params['connect_timeout'])))
    return opts


def primary_client_options(params):
    """Option-file entries of the primary admin login for mariadb-dump (which has no connect-timeout)."""
    opts = [('user', params['primary_login_user']),
            ('password', params['primary_login_password'] or ''),
            ('host', params['primary_host']), ('port', str(params['primary_port'])),
            ('protocol', 'TCP')]
    if params['primary_ssl']:
        opts.append(('ssl', True))
        if params['primary_ssl_ca']:
            opts.append(('ssl-ca', params['primary_ssl_ca']))
        if params['primary_ssl_verify_server_cert']:
            opts.append(('ssl-verify-server-cert', True))
    return opts


def dump_command(dump_bin, option_file, databases):
    # --master-data=2 writes the position as a comment only: the dump itself must
    # not touch the replica's replication settings; the module sets them.
    return [dump_bin, '--defaults-file=' + option_file, '--single-transaction', '--gtid', '--master-data=2',
            '--routines', '--triggers', '--hex-blob', '--max-allowed-packet=1G', '--databases'] + list(databases)


def load_command(client_bin, option_file):
    # The snapshot is not written to the replica's own binary log: its GTIDs
    # would otherwise look like local transactions to a later failover.
    return [client_bin, '--defaults-file=' + option_file, '--batch', '--binary-mode',
            '--max-allowed-packet=1G', '--init-command=SET SESSION sql_log_bin=0']


class DumpGtidScanner(object):
    """Finds ``-- SET GLOBAL gtid_slave_pos='...';`` in a dump streamed through it.

    MariaDB 10.11 writes it near the end of the dump (older releases near the
    start). Only the first SCAN_LINE_LIMIT bytes of each line are kept, so a
    long INSERT line costs no memory; table data never starts a line with
    that text (mariadb-dump escapes newlines inside strings).
    """

    PATTERN = re.compile(br"^(?:-- )?SET GLOBAL gtid_slave_pos\s*=\s*'([0-9,\-]*)'\s*;", re.M)

    def __init__(self):
        self.carry = b''
        self.position = None

    def feed(self, chunk):
        buf = self.carry + chunk
        cut = buf.rfind(b'\n')
        if cut < 0:
            self.carry = buf[:SCAN_LINE_LIMIT]
            return
        self._scan(buf[:cut + 1])
        self.carry = buf[cut + 1:cut + 1 + SCAN_LINE_LIMIT]

    def close(self):
        if self.carry:
            self._scan(self.carry)
            self.carry = b''
        return self.position

    def _scan(self, data):
        if self.position is None and b'gtid_slave_pos' in data:
            m = self.PATTERN.search(data)
            if m:
                self.position = m.group(1).decode('ascii')


def _tail(fileobj):
    fileobj.seek(0)
    text = fileobj.read().decode('utf-8', 'replace').strip()
    if len(text) > STDERR_TAIL:
        text = '...' + text[-STDERR_TAIL:]
    return text


def copy_snapshot(dump_cmd, load_cmd):
    """Pipe the dump into the loader. Returns (gtid position or None, error or None, bytes copied)."""
    copied = 0
    with tempfile.TemporaryFile() as dump_err, tempfile.TemporaryFile() as load_err:
        dump = subprocess.Popen(dump_cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=dump_err)
        try:
            load = subprocess.Popen(load_cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=load_err)
        except OSError:
            dump.kill()
            dump.wait()
            raise
        scanner = DumpGtidScanner()
        load_broken = False
        try:
            while True:
                chunk = dump.stdout.read(SNAPSHOT_CHUNK)
                if not chunk:
                    break
                scanner.feed(chunk)
                try:
                    load.stdin.write(chunk)
                except (IOError, OSError):
                    load_broken = True
                    dump.kill()
                    break
                copied += len(chunk)
        finally:
            try:
                load.stdin.close()
            except (IOError, OSError):
                load_broken = True
            dump.stdout.close()
            dump_rc = dump.wait()
            load_rc = load.wait()
        position = scanner.close()
        if load_rc != 0 or load_broken:
            return position, 'loading it into the replica failed (mariadb exit %s): %s' % (load_rc, _tail(load_err)), copied
        if dump_rc != 0:
            return position, 'mariadb-dump failed (exit %s): %s' % (dump_rc, _tail(dump_err)), copied
        if position is None:
            return None, 'the dump holds no GTID position (is binary logging on on the primary?)', copied
        return position, None, copied
