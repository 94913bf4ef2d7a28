# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions of mariadb_replica: settings compared, CHANGE MASTER built,
snapshot or not, password or not, and option validation - no server needed."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.mailops.mailstack.plugins.module_utils import replication as rep
from ansible_collections.mailops.mailstack.plugins.modules import mariadb_replica

FACTS = dict(server_id=2, gtid_slave_pos='0-1-10', gtid_current_pos='0-1-10', gtid_binlog_pos='', read_only=False)


def params(**kw):
    p = dict(login_user=None, login_password=None, login_unix_socket=None, login_host=None, login_port=3306,
             connect_timeout=10, connection_name='', primary_host='192.0.2.10', primary_port=3306,
             primary_user='replicator', primary_password='pw', primary_login_user='root',
             primary_login_password='rootpw', primary_ssl=False, primary_ssl_ca=None,
             primary_ssl_verify_server_cert=False, primary_connect_retry=None, state='started',
             create_primary_user=False, primary_user_host='%', update_password='on_create',
             databases=['mail'], snapshot='auto', wait_timeout=120, max_lag=0)
    p.update(kw)
    return p


def status(**kw):
    row = {
        'Connection_name': '', 'Master_Host': '192.0.2.10', 'Master_User': 'replicator', 'Master_Port': 3306,
        'Connect_Retry': 60, 'Slave_IO_Running': 'Yes', 'Slave_SQL_Running': 'Yes', 'Master_SSL_Allowed': 'No',
        'Master_SSL_CA_File': '', 'Seconds_Behind_Master': 0, 'Master_SSL_Verify_Server_Cert': 'No',
        'Last_IO_Errno': 0, 'Last_IO_Error': '', 'Last_SQL_Errno': 0, 'Last_SQL_Error': '', 'Master_Server_Id': 1,
        'Using_Gtid': 'Slave_Pos', 'Gtid_IO_Pos': '0-1-10',
    }
    row.update(kw)
    return rep.replica_status(row, FACTS, '')


# --- settings ---------------------------------------------------------------------

def test_same_settings_no_differences():
    assert rep.settings_differences(rep.current_settings(status()), rep.desired_settings(params())) == []


def test_host_compares_without_case_and_gtid_mode_matters():
    cur = rep.current_settings(status(Master_Host='DB1.example.org', Using_Gtid='Current_Pos'))
    assert rep.settings_differences(cur, rep.desired_settings(params(primary_host='db1.example.org'))) == ['using_gtid']


@pytest.mark.parametrize('change, keys', [
    (dict(primary_host='192.0.2.11'), ['primary_host']),
    (dict(primary_port=3307), ['primary_port']),
    (dict(primary_user='other'), ['primary_user']),
    (dict(primary_connect_retry=10), ['connect_retry']),
    (dict(primary_connect_retry=60), []),
    (dict(primary_ssl=True), ['ssl']),  # ssl_ca '' and verify off are what the replica has
    (dict(primary_ssl=True, primary_ssl_ca='/ca.pem', primary_ssl_verify_server_cert=True),
     ['ssl', 'ssl_ca', 'ssl_verify_server_cert']),
])
def test_differences(change, keys):
    assert rep.settings_differences(rep.current_settings(status()), rep.desired_settings(params(**change))) == keys


def test_without_ssl_the_ca_is_not_compared():
    cur = rep.current_settings(status(Master_SSL_CA_File='/old.pem'))
    assert rep.settings_differences(cur, rep.desired_settings(params())) == []


def test_unconfigured_needs_every_managed_setting():
    keys = rep.settings_differences({}, rep.desired_settings(params()))
    assert keys == ['primary_host', 'primary_port', 'primary_user', 'using_gtid', 'ssl']


def test_change_master_statement_values_are_arguments():
    desired = rep.desired_settings(params(primary_ssl=True, primary_ssl_ca="/c'a.pem", primary_connect_retry=5))
    keys = rep.settings_differences({}, desired)
    sql, args = rep.change_master_statement('east', desired, keys, "pw'secret")
    assert sql == ('CHANGE MASTER %s TO MASTER_HOST=%s, MASTER_PORT=3306, MASTER_USER=%s, MASTER_USE_GTID=slave_pos, '
                   'MASTER_SSL=1, MASTER_SSL_CA=%s, MASTER_SSL_VERIFY_SERVER_CERT=0, MASTER_CONNECT_RETRY=5, '
                   'MASTER_PASSWORD=%s')
    assert args == ('east', '192.0.2.10', 'replicator', "/c'a.pem", "pw'secret")
    assert 'secret' not in sql


def test_change_master_only_what_changed():
    desired = rep.desired_settings(params(primary_user='replicator2'))
    sql, args = rep.change_master_statement('', desired, ['primary_user'], 'pw2')
    assert sql == 'CHANGE MASTER %s TO MASTER_USER=%s, MASTER_PASSWORD=%s'
    assert args == ('', 'replicator2', 'pw2')
    with pytest.raises(ValueError):
        rep.change_master_statement('', desired, [])


def test_describe_differences():
    cur = rep.current_settings(status())
    desired = rep.desired_settings(params(primary_port=3307))
    assert rep.describe_differences(cur, desired, ['primary_port']) == ['primary_port 3306 -> 3307']


# --- snapshot -----------------------------------------------------------------------

def test_snapshot_when_empty():
    load, why = rep.snapshot_decision('auto', False, '', '0-1-99', {}, ['mail'])
    assert load and 'holds none of mail' in why
    # an empty database (created by a package or a role) counts as absent
    assert rep.snapshot_decision('auto', False, '', '0-1-99', {'mail': 0}, ['mail'])[0]


def test_no_snapshot_when_configured_or_positioned_or_never():
    assert rep.snapshot_decision('auto', True, '', '0-1-99', {}, ['mail'])[0] is False
    load, why = rep.snapshot_decision('auto', False, '0-1-50', '0-1-99', {'mail': 4}, ['mail'])
    assert load is False and 'continues from it' in why
    assert rep.snapshot_decision('never', False, '', '0-1-99', {}, ['mail'])[0] is False
    assert rep.snapshot_decision('never', False, '', '0-1-99', {'mail': 3}, ['mail'])[0] is False


def test_data_without_position_is_refused():
    with pytest.raises(rep.ReplicationError) as e:
        rep.snapshot_decision('auto', False, '7-3-1', '0-1-99', {'mail': 4, 'other': 1}, ['mail', 'other', 'x'])
    assert 'mail (4 tables), other (1 tables)' in e.value.msg and 'changed nothing' in e.value.msg


# --- password ---------------------------------------------------------------------------

def test_on_create_keeps_password_unless_io_thread_is_denied():
    assert rep.password_decision('on_create', None, 'pw', status())[0] is False
    denied = status(Slave_IO_Running='Connecting', Last_IO_Errno=1045, Last_IO_Error='Access denied')
    change, why, warning = rep.password_decision('on_create', None, 'pw', denied)
    assert change and '1045' in why and warning is None
    # an old error while the thread runs again does not count
    assert rep.password_decision('on_create', None, 'pw', status(Last_IO_Errno=1045))[0] is False


def test_always_compares_the_stored_password():
    assert rep.password_decision('always', 'pw', 'pw', status()) == (False, None, None)
    change, why, warning = rep.password_decision('always', 'old', 'pw', status())
    assert change and 'differs' in why and 'old' not in why and 'pw' not in why.replace('password', '')
    change, why, warning = rep.password_decision('always', None, 'pw', status())
    assert change is False and 'cannot be read' in warning


# --- options -------------------------------------------------------------------------------

def test_valid_options():
    assert mariadb_replica.check_params(params()) == []
    assert mariadb_replica.check_params(params(state='absent', primary_host=None, primary_password=None)) == []


@pytest.mark.parametrize('change, fragment', [
    (dict(primary_host='localhost'), "primary_host: 'localhost'"),
    (dict(primary_host=''), 'primary_host: required'),
    (dict(primary_port=0), 'primary_port: 0 is not a TCP port'),
    (dict(login_port=70000), 'login_port: 70000'),
    (dict(wait_timeout=-1), 'wait_timeout: must be 0 or more'),
    (dict(max_lag=-5), 'max_lag: must be 0 or more'),
    (dict(primary_connect_retry=0), 'primary_connect_retry: must be at least 1'),
    (dict(connect_timeout=0), 'connect_timeout: must be at least 1'),
    (dict(databases=['mail', 'mail']), "databases[1]: 'mail' is listed twice"),
    (dict(databases=['mysql']), "databases[0]: 'mysql' is a system database"),
    (dict(databases=['']), "databases[0]: '' is not a database name"),
    (dict(databases=[]), 'databases: must name at least one'),
    (dict(create_primary_user=True, primary_login_user=None), 'create_primary_user: needs primary_login_user'),
    (dict(primary_ssl_ca='/ca.pem'), 'primary_ssl_ca: only with primary_ssl=true'),
    (dict(primary_ssl_verify_server_cert=True), 'primary_ssl_verify_server_cert: only with primary_ssl=true'),
    (dict(connection_name='x' * 65), 'connection_name: at most 64'),
    (dict(primary_password='p' * 97), 'primary_password: at most 96 characters'),
    (dict(primary_password='two\nlines'), 'primary_password: must not contain a line break'),
])
def test_invalid_options_name_the_option(change, fragment):
    errors = mariadb_replica.check_params(params(**change))
    assert any(fragment in e for e in errors), errors
    assert not [e for e in errors if 'ppppp' in e or 'two' in e]  # never the password itself


def test_quote_ident():
    assert mariadb_replica.quote_ident('mail') == '`mail`'
    assert mariadb_replica.quote_ident('we`ird') == '`we``ird`'


# --- state=started: the plan from what the pre-flight found --------------------------------

UNCONFIGURED = rep.replica_status(None, FACTS, '')
STOPPED_WITH_ERROR = dict(Slave_SQL_Running='No', Last_SQL_Errno=1062, Last_SQL_Error='Duplicate entry',
                          Seconds_Behind_Master=None)


@pytest.mark.parametrize('errno, change, expected', [
    (1045, dict(create_primary_user=True, update_password='always'), 'set primary user password'),
    (1045, dict(create_primary_user=True), "exists on the primary 192.0.2.10:3306, but primary_password does not"),
    (1045, dict(), "Cannot log in to the primary 192.0.2.10:3306 as 'replicator' (primary_user): (1045) denied."),
    (2003, dict(create_primary_user=True, update_password='always'), 'Cannot log in to the primary'),
])
def test_primary_login_decision(errno, change, expected):
    p = params(**change)
    if expected.startswith('set '):
        assert rep.primary_login_decision(p, errno, '(1045) denied') == expected
        return
    with pytest.raises(rep.ReplicationError) as e:
        rep.primary_login_decision(p, errno, '(%d) denied' % errno)
    assert expected in e.value.msg and 'Nothing was changed' in e.value.msg and 'pw' not in e.value.msg


PRIMARY = dict(is_mariadb=True, version='10.11.6-MariaDB-log', log_bin=True, server_id=1)


@pytest.mark.parametrize('change, replica_id, expected', [
    (dict(), 2, None),
    (dict(is_mariadb=False, version='8.0.36'), 2, 'The primary db1:3306 runs 8.0.36, not MariaDB.'),
    (dict(log_bin=False), 2, 'does not write a binary log (log_bin is OFF)'),
    (dict(), 1, 'the replica have the same server_id (1)'),
    (dict(is_mariadb=False, log_bin=False, version='8.0.36'), 1, 'not MariaDB'),  # the first refusal wins
])
def test_primary_refusal(change, replica_id, expected):
    msg = rep.primary_refusal(dict(PRIMARY, **change), replica_id, 'db1:3306')
    if expected is None:
        assert msg is None
    else:
        assert expected in msg and msg.endswith('Nothing was changed.')


@pytest.mark.parametrize('grants, refused', [
    (["GRANT REPLICATION SLAVE ON *.* TO `replicator`@`%`"], False),
    (["GRANT USAGE ON *.* TO `replicator`@`%`", "GRANT SELECT ON `mail`.* TO `replicator`@`%`"], True),
    ([], True),
])
def test_grants_refusal(grants, refused):
    msg = rep.grants_refusal(grants, 'replicator', 'db1:3306')
    assert (msg is not None) == refused
    if refused:
        assert "'replicator' on the primary db1:3306 lacks the REPLICATION SLAVE privilege" in msg


@pytest.mark.parametrize('update_password, st, diffs, account_plan, needed', [
    ('always', status(), [], [], True),
    ('on_create', status(), [], [], False),
    ('always', UNCONFIGURED, [], [], False),
    ('always', status(), ['primary_port'], [], False),
    ('always', status(), [], ['set primary user password'], False),
])
def test_needs_stored_password(update_password, st, diffs, account_plan, needed):
    assert rep.needs_stored_password(update_password, st, diffs, account_plan) is needed


@pytest.mark.parametrize('st, diffs, account_plan, stored, expected', [
    (status(), [], ['set primary user password'], None,
     (True, 'the replication account gets primary_password on the primary', None)),
    (status(), [], [], 'pw', (False, None, None)),
    (status(), [], [], 'old', (True, 'the stored replication password differs from primary_password', None)),
    (status(), ['primary_port'], [], 'old', (False, None, None)),  # CHANGE MASTER sets it anyway
    (UNCONFIGURED, [], ['set primary user password'], None, (False, None, None)),
])
def test_password_plan(st, diffs, account_plan, stored, expected):
    assert rep.password_plan('always', stored, 'pw', st, diffs, account_plan) == expected


NO_SNAPSHOT = (False, 'replication is already configured; it continues from its own position')
NO_PASSWORD = (False, None)


@pytest.mark.parametrize('st, diffs, password, snapshot, account_plan, flags, actions', [
    # already as asked and running: nothing
    (status(), [], NO_PASSWORD, NO_SNAPSHOT, [], (False, False, False), []),
    # a new replica with a snapshot and a new account
    (UNCONFIGURED, rep.SETTING_KEYS[:4], NO_PASSWORD, (True, 'the replica holds none of mail'),
     ['create primary user'], (True, False, True),
     ['create primary user', 'load snapshot', 'set gtid_slave_pos', 'change master', 'start slave']),
    # another port: stop, change, start
    (status(), ['primary_port'], NO_PASSWORD, NO_SNAPSHOT, [], (True, True, True),
     ['stop slave', 'change master', 'start slave']),
    # only the password
    (status(), [], (True, 'the stored replication password differs from primary_password'), NO_SNAPSHOT, [],
     (True, True, True), ['stop slave', 'change master', 'start slave']),
    # a stopped thread is started again, nothing configured
    (status(**STOPPED_WITH_ERROR), [], NO_PASSWORD, NO_SNAPSHOT, [], (False, False, True), ['start slave']),
    # both threads stopped and settings changed: no STOP SLAVE first
    (status(Slave_IO_Running='No', Slave_SQL_Running='No'), ['primary_host'], NO_PASSWORD, NO_SNAPSHOT,
     ['grant primary user'], (True, False, True), ['grant primary user', 'change master', 'start slave']),
])
def test_started_plan_actions(st, diffs, password, snapshot, account_plan, flags, actions):
    plan = rep.started_plan(params(primary_port=3307 if diffs == ['primary_port'] else 3306), st, account_plan,
                            list(diffs), password, snapshot)
    assert (plan['configure'], plan['stop'], plan['start']) == flags
    assert [a for a, _note in plan['steps']] == actions


def test_started_plan_notes():
    fresh = rep.started_plan(params(create_primary_user=True), UNCONFIGURED, ['create primary user'],
                             list(rep.SETTING_KEYS[:4]), NO_PASSWORD, (True, 'the replica holds none of mail'))
    notes = dict(fresh['steps'])
    assert notes['create primary user'] == "create the replication account 'replicator'@'%' on the primary"
    assert notes['load snapshot'] == 'load a snapshot of mail (the replica holds none of mail)'
    assert notes['change master'] == "configure replication from 192.0.2.10:3306 as 'replicator'"
    assert notes['start slave'] == 'start slave' and fresh['restart_errors'] is None

    changed = rep.started_plan(params(primary_port=3307), status(), [], ['primary_port'],
                               (True, 'the stored replication password differs from primary_password'), NO_SNAPSHOT)
    assert dict(changed['steps'])['change master'] == (
        'change master: primary_port 3306 -> 3307; password (the stored replication password differs from '
        'primary_password)')


def test_started_plan_restart_after_error():
    plan = rep.started_plan(params(), status(**STOPPED_WITH_ERROR), [], [], NO_PASSWORD, NO_SNAPSHOT)
    assert plan['steps'] == [('start slave', 'start replication (the SQL thread is not running, error 1062: '
                                             'Duplicate entry)')]
    assert plan['restart_errors'] == 'the SQL thread is not running, error 1062: Duplicate entry'
    # stopped without an error: started again, nothing to warn about
    plain = rep.started_plan(params(), status(Slave_SQL_Running='No'), [], [], NO_PASSWORD, NO_SNAPSHOT)
    assert plain['start'] and plain['restart_errors'] is None


def test_started_diff():
    desired = rep.desired_settings(params(primary_port=3307))
    diff = rep.started_diff(status(), desired, False)
    assert diff['before']['primary_port'] == 3306 and diff['before']['running'] is True
    assert diff['after']['primary_port'] == 3307 and diff['after']['running'] is True
    assert 'password_changed' not in diff['after']
    assert diff['after']['connect_retry'] == 60  # not managed: kept
    fresh = rep.started_diff(UNCONFIGURED, rep.desired_settings(params()), False)
    assert fresh['before'] == {} and fresh['after']['password_changed'] is True
    assert rep.started_diff(status(), desired, True)['after']['password_changed'] is True


@pytest.mark.parametrize('change, changed, notes, check_mode, expected', [
    (dict(), True, ['stop slave', 'change master: x'], True, 'Check mode: would stop slave; change master: x.'),
    (dict(), False, [], True, 'Replication from db1:3306 is already as requested; nothing would change.'),
    (dict(), True, ['start slave'], False, 'Replication from db1:3306: start slave. Caught up.'),
    (dict(max_lag=30), True, ['start slave'], False,
     'Replication from db1:3306: start slave. Within max_lag (4 s behind).'),
    (dict(wait_timeout=0), True, ['start slave'], False,
     'Replication from db1:3306: start slave. Not waited for (wait_timeout=0).'),
    (dict(), False, [], False, 'Replication from db1:3306 is already as requested and caught up; nothing changed.'),
    (dict(wait_timeout=0), False, [], False,
     'Replication from db1:3306 is already as requested and running; nothing changed.'),
])
def test_started_message(change, changed, notes, check_mode, expected):
    assert rep.started_message('db1:3306', changed, notes, params(**change), 4, check_mode=check_mode) == expected


def test_connect_replica_names_where_and_who(tmp_path):
    missing = str(tmp_path / 'no.sock')
    with pytest.raises(rep.ReplicationError) as e:
        rep.connect_replica(params(login_unix_socket=missing, login_user='root', connect_timeout=1))
    assert e.value.msg.startswith("Cannot connect to the replica at %s as 'root': (" % missing)
