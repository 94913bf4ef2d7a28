# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/replication.py: GTID lists, SHOW ALL SLAVES STATUS rows, health,
master info files, option files and the dump scanner - no server needed."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import stat
import sys

import pytest

from ansible_collections.mailops.mailstack.plugins.module_utils import replication as rep


# --- GTID lists ----------------------------------------------------------------

@pytest.mark.parametrize('value, expected', [
    ('', {}),
    (None, {}),
    ('0-1-5', {0: (1, 5)}),
    ('0-1-100,1-2-5', {0: (1, 100), 1: (2, 5)}),
    (' 0-1-100 , 7-3-1 ', {0: (1, 100), 7: (3, 1)}),
    (b'0-1-2', {0: (1, 2)}),
])
def test_parse_gtid_list(value, expected):
    assert rep.parse_gtid_list(value) == expected


@pytest.mark.parametrize('value, fragment', [
    ('0-1', 'not a GTID'), ('a-b-c', 'not a GTID'), ('0-1-2,0-2-3', 'appears twice'), ('0-1-2;1-1-1', 'not a GTID'),
])
def test_parse_gtid_list_bad(value, fragment):
    with pytest.raises(ValueError) as e:
        rep.parse_gtid_list(value)
    assert fragment in str(e.value)


def test_format_gtid_list_sorted_by_domain():
    assert rep.format_gtid_list({1: (2, 5), 0: (1, 100)}) == '0-1-100,1-2-5'
    assert rep.format_gtid_list({}) == ''


@pytest.mark.parametrize('current, target, reached', [
    ('0-1-10', '0-1-10', True),
    ('0-1-11', '0-1-10', True),
    ('0-1-9', '0-1-10', False),
    ('', '0-1-10', False),
    ('', '', True),
    ('0-1-10', '', True),
    # another server_id in the same domain (after a failover): sequence numbers decide
    ('0-3-12', '0-1-10', True),
    # a domain the replica has not seen yet
    ('0-1-10', '0-1-10,1-4-2', False),
    # domains of other connections do not matter
    ('0-1-10,5-9-1', '0-1-10', True),
])
def test_gtid_reached(current, target, reached):
    assert rep.gtid_reached(current, target) is reached


def test_gtid_behind_says_where():
    assert rep.gtid_behind('0-1-9', '0-1-10,1-4-2') == [
        'domain 0: at 0-1-9, primary at 0-1-10', 'domain 1: at nothing, primary at 1-4-2']


def test_merge_gtid_pos_keeps_other_domains():
    assert rep.merge_gtid_pos('0-1-5,2-7-40', '0-1-90') == '0-1-90,2-7-40'
    assert rep.merge_gtid_pos('', '0-1-90') == '0-1-90'
    assert rep.merge_gtid_pos('0-1-5', '') == '0-1-5'


@pytest.mark.parametrize('slave, primary, shares', [
    ('', '0-1-5', False),
    ('0-1-5', '0-1-9', True),
    ('3-2-5', '0-1-9', False),  # a position for another primary only
    ('3-2-5', '', True),  # the primary has written nothing: any position counts
    ('', '', False),
])
def test_shares_domain(slave, primary, shares):
    assert rep.shares_domain(slave, primary) is shares


# --- status rows ------------------------------------------------------------------

FACTS = dict(server_id=2, gtid_slave_pos='0-1-10', gtid_current_pos='0-1-10', gtid_binlog_pos='', read_only=True)


def slave_row(**kw):
    row = {
        'Connection_name': '', 'Slave_IO_State': 'Waiting for master to send event', 'Master_Host': '192.0.2.10',
        'Master_User': 'replicator', 'Master_Port': 3306, 'Connect_Retry': 60, 'Slave_IO_Running': 'Yes',
        'Slave_SQL_Running': 'Yes', 'Master_SSL_Allowed': 'No', 'Master_SSL_CA_File': '',
        'Seconds_Behind_Master': 0, 'Master_SSL_Verify_Server_Cert': 'No', 'Last_IO_Errno': 0, 'Last_IO_Error': '',
        'Last_SQL_Errno': 0, 'Last_SQL_Error': '', 'Master_Server_Id': 1, 'Using_Gtid': 'Slave_Pos',
        'Gtid_IO_Pos': '0-1-10', 'SQL_Delay': 0, 'Slave_SQL_Running_State': 'Slave has read all relay log',
        'Gtid_Slave_Pos': '0-1-10',
    }
    row.update(kw)
    return row


def test_status_of_healthy_replica():
    st = rep.with_health(rep.replica_status(slave_row(), FACTS, ''))
    assert st['configured'] and st['healthy'] and st['problems'] == []
    assert st['io_running'] is True and st['sql_running'] is True
    assert (st['primary_host'], st['primary_port'], st['primary_user']) == ('192.0.2.10', 3306, 'replicator')
    assert st['seconds_behind'] == 0 and st['gtid_slave_pos'] == '0-1-10' and st['primary_server_id'] == 1
    assert st['ssl'] is False and st['ssl_verify_server_cert'] is False and st['using_gtid'] == 'Slave_Pos'


def test_status_not_configured():
    st = rep.with_health(rep.replica_status(None, FACTS, ''))
    assert st['configured'] is False and st['healthy'] is False
    assert st['problems'] == ['replication is not configured']
    assert rep.health_problems(rep.replica_status(None, FACTS, 'east'))[0] == \
        "replication is not configured for connection 'east'"


def test_status_broken_sql_thread():
    row = slave_row(Slave_SQL_Running='No', Seconds_Behind_Master=None, Last_SQL_Errno=1062,
                    Last_SQL_Error="Could not execute Write_rows_v1 event on table mail.msg; Duplicate entry '40'")
    st = rep.with_health(rep.replica_status(row, FACTS, ''))
    assert not st['healthy'] and st['sql_running'] is False
    assert st['problems'] == ["the SQL thread is not running, error 1062: Could not execute Write_rows_v1 event on "
                              "table mail.msg; Duplicate entry '40'"]


def test_status_io_connecting_with_error():
    row = slave_row(Slave_IO_Running='Connecting', Seconds_Behind_Master=None, Last_IO_Errno=1045,
                    Last_IO_Error="error connecting to master 'replicator@192.0.2.10:3306'")
    st = rep.with_health(rep.replica_status(row, FACTS, ''))
    assert st['io_thread'] == 'Connecting' and st['io_running'] is False
    assert st['problems'] == ["the IO thread is connecting to the primary, error 1045: error connecting to master "
                              "'replicator@192.0.2.10:3306'"]


def test_health_lag():
    st = rep.replica_status(slave_row(Seconds_Behind_Master=120), FACTS, '')
    assert rep.health_problems(st) == []
    assert rep.health_problems(st, max_lag=120) == []
    assert rep.health_problems(st, max_lag=60) == ['the replica is 120 s behind the primary (max_lag 60)']
    st = rep.replica_status(slave_row(Seconds_Behind_Master=None), FACTS, '')
    assert 'lag is unknown' in rep.health_problems(st)[0]


def test_status_values_as_bytes_and_strings():
    row = slave_row(Master_Port='3307', Seconds_Behind_Master='5', Master_Host=b'db1', Last_SQL_Errno='0',
                    Master_SSL_Allowed='Yes')
    st = rep.replica_status(row, FACTS, '')
    assert st['primary_port'] == 3307 and st['seconds_behind'] == 5 and st['primary_host'] == 'db1'
    assert st['last_sql_errno'] == 0 and st['ssl'] is True


def test_find_connection_ignores_case():
    rows = [slave_row(Connection_name=''), slave_row(Connection_name='East')]
    assert rep.find_connection(rows, 'east')['Connection_name'] == 'East'
    assert rep.find_connection(rows, '')['Connection_name'] == ''
    assert rep.find_connection(rows, 'west') is None


# --- grants --------------------------------------------------------------------------

@pytest.mark.parametrize('grants, ok', [
    (["GRANT REPLICATION SLAVE ON *.* TO `replicator`@`%` IDENTIFIED BY PASSWORD '*ABC'"], True),
    (["GRANT RELOAD, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `r`@`%`"], True),
    (["GRANT REPLICATION REPLICA ON *.* TO `r`@`%`"], True),
    (["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"], True),
    (["GRANT USAGE ON *.* TO `r`@`%`", "GRANT SELECT ON `mail`.* TO `r`@`%`"], False),
    (["GRANT REPLICATION SLAVE ADMIN ON *.* TO `r`@`%`"], False),
    (["GRANT ALL PRIVILEGES ON `mail`.* TO `r`@`%`"], False),
    ([], False),
])
def test_has_replication_privilege(grants, ok):
    assert rep.has_replication_privilege(grants) is ok


# --- master info files ------------------------------------------------------------------

MASTER_INFO = '33\n\n4\n127.0.0.1\nrepl\nx"y#z\\w\n23301\n60\n0\n\n\n\n\n\n0\n30.000\n\n0\n\n0\n' \
              + '\n' * 13 + 'using_gtid=2\ndo_domain_ids=0\nignore_domain_ids=0\nEND_MARKER\n'


def test_parse_master_info():
    assert rep.parse_master_info(MASTER_INFO) == dict(host='127.0.0.1', user='repl', password='x"y#z\\w', port=23301)
    assert rep.parse_master_info('') is None
    assert rep.parse_master_info('garbage\n1\n2\n3\n4\n5\n6\n') is None
    assert rep.parse_master_info('33\n\n4\nh\nu\np\nnotaport\n') is None


@pytest.mark.parametrize('name, filename', [
    ('', 'master.info'),
    ('east', 'master-east.info'),
    ('Other-Conn', 'master-other@002dconn.info'),
    ('a_b 1', 'master-a_b@00201.info'),
])
def test_master_info_filename(name, filename):
    assert rep.master_info_filename(name) == filename


def test_read_stored_password(tmp_path):
    (tmp_path / 'master.info').write_text(MASTER_INFO)
    st = rep.replica_status(slave_row(Master_Host='127.0.0.1', Master_User='repl', Master_Port=23301), FACTS, '')
    assert rep.read_stored_password(str(tmp_path), '', st) == 'x"y#z\\w'
    # the file is trusted only when it describes the connection
    other = rep.replica_status(slave_row(Master_Host='127.0.0.1', Master_User='someone', Master_Port=23301), FACTS, '')
    assert rep.read_stored_password(str(tmp_path), '', other) is None
    assert rep.read_stored_password(str(tmp_path), 'east', st) is None
    assert rep.read_stored_password(str(tmp_path / 'missing'), '', st) is None
    assert rep.read_stored_password(str(tmp_path), '', rep.replica_status(None, FACTS, '')) is None


# --- option files ----------------------------------------------------------------------

@pytest.mark.parametrize('value, written', [
    ('plain', '"plain"'),
    ('with space # and ;', '"with space # and ;"'),
    ('q"uote', '"q\\"uote"'),
    ('back\\slash', '"back\\\\slash"'),
    ('new\nline\ttab', '"new\\nline\\ttab"'),
    ("single'quote", '"single\'quote"'),
])
def test_option_value(value, written):
    assert rep.option_value(value) == written


def test_option_file_text_and_mode(tmp_path):
    opts = [('user', 'root'), ('password', 'p"w'), ('ssl', True), ('ssl-ca', None), ('skip', False)]
    assert rep.option_file_text(opts) == '[client]\nuser="root"\npassword="p\\"w"\nssl\n'
    path = rep.write_option_file(opts, str(tmp_path))
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with open(path) as f:
            assert 'password="p\\"w"' in f.read()
    finally:
        os.unlink(path)


def params(**kw):
    p = dict(login_user=None, login_password=None, login_unix_socket=None, login_host=None, login_port=3306,
             connect_timeout=10, connection_name='', primary_host='192.0.2.10', primary_port=3306,
             primary_user='replicator', primary_password='pw', primary_login_user='root',
             primary_login_password='rootpw', primary_ssl=False, primary_ssl_ca=None,
             primary_ssl_verify_server_cert=False, primary_connect_retry=None)
    p.update(kw)
    return p


def test_replica_target_defaults_to_debian_socket():
    kwargs, where, user = rep.replica_target(params())
    assert kwargs['unix_socket'] == '/run/mysqld/mysqld.sock' and where == '/run/mysqld/mysqld.sock'
    assert 'user' not in kwargs and 'host' not in kwargs
    kwargs, where, user = rep.replica_target(params(login_host='db2', login_port=3307, login_user='admin',
                                                    login_password='x'))
    assert (kwargs['host'], kwargs['port'], kwargs['user'], where, user) == ('db2', 3307, 'admin', 'db2:3307', 'admin')
    kwargs, where, user = rep.replica_target(params(login_host='db2', login_unix_socket='/tmp/s.sock'))
    assert kwargs['unix_socket'] == '/tmp/s.sock' and 'host' not in kwargs


def test_client_options():
    assert ('protocol', 'SOCKET') in rep.replica_client_options(params())
    assert ('socket', '/run/mysqld/mysqld.sock') in rep.replica_client_options(params())
    tcp = rep.replica_client_options(params(login_host='127.0.0.1', login_port=3307, login_user='u',
                                            login_password='p'))
    assert ('host', '127.0.0.1') in tcp and ('port', '3307') in tcp and ('password', 'p') in tcp
    prim = rep.primary_client_options(params(primary_ssl=True, primary_ssl_ca='/ca.pem',
                                             primary_ssl_verify_server_cert=True))
    assert ('user', 'root') in prim and ('password', 'rootpw') in prim and ('ssl-ca', '/ca.pem') in prim
    assert ('ssl', True) in prim and ('ssl-verify-server-cert', True) in prim
    assert not [o for o in prim if o[0] == 'connect-timeout']  # mariadb-dump does not know it


def test_commands_carry_no_password():
    dump = rep.dump_command('/usr/bin/mariadb-dump', '/tmp/x.cnf', ['mail'])
    load = rep.load_command('/usr/bin/mariadb', '/tmp/y.cnf')
    assert dump[1] == '--defaults-file=/tmp/x.cnf' and load[1] == '--defaults-file=/tmp/y.cnf'
    assert '--master-data=2' in dump and '--single-transaction' in dump and '--gtid' in dump
    assert dump[-2:] == ['--databases', 'mail']
    assert '--init-command=SET SESSION sql_log_bin=0' in load
    assert not [a for a in dump + load if 'password' in a]


def test_primary_ssl_options():
    assert rep.primary_ssl_options(params()) is None
    assert rep.primary_ssl_options(params(primary_ssl=True)) == dict(check_hostname=False, verify_mode=False)
    assert rep.primary_ssl_options(params(primary_ssl=True, primary_ssl_ca='/ca.pem',
                                          primary_ssl_verify_server_cert=True)) == dict(
        check_hostname=True, verify_mode=True, ca='/ca.pem')


# --- the dump scanner ----------------------------------------------------------------------

DUMP_TAIL = (b"UNLOCK TABLES;\n\n-- The deferred gtid setting for slave corresponding to the master-data "
             b"CHANGE-MASTER follows\n\n-- Preferably use GTID to start replication from GTID position:\n\n"
             b"-- SET GLOBAL gtid_slave_pos='0-1-10,1-2-7';\n/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n")


def feed_in_chunks(data, size):
    s = rep.DumpGtidScanner()
    for i in range(0, len(data), size):
        s.feed(data[i:i + size])
    return s.close()


@pytest.mark.parametrize('size', [1, 7, 64, 100000])
def test_scanner_finds_position_across_chunk_boundaries(size):
    data = b'-- MariaDB dump\nINSERT INTO `t` VALUES\n(1,\'a\');\n' + DUMP_TAIL
    assert feed_in_chunks(data, size) == '0-1-10,1-2-7'


def test_scanner_old_style_and_empty_position():
    assert feed_in_chunks(b"CHANGE MASTER TO MASTER_USE_GTID=slave_pos;\nSET GLOBAL gtid_slave_pos='0-1-3';\n", 5) \
        == '0-1-3'
    assert feed_in_chunks(b"-- SET GLOBAL gtid_slave_pos='';\n", 3) == ''
    assert feed_in_chunks(b'no position here\n', 4) is None


def test_scanner_ignores_data_and_long_lines():
    # table data never starts a line with the statement; a long line is cut, not kept whole
    long_line = b"(1,'" + b'x' * (3 * rep.SCAN_LINE_LIMIT) + b"-- SET GLOBAL gtid_slave_pos='9-9-9';'),\n"
    data = b"INSERT INTO `t` VALUES ('-- SET GLOBAL gtid_slave_pos=''5-5-5'';'),\n" + long_line + DUMP_TAIL
    scanner = rep.DumpGtidScanner()
    for i in range(0, len(data), 1000):
        scanner.feed(data[i:i + 1000])
        assert len(scanner.carry) <= rep.SCAN_LINE_LIMIT
    assert scanner.close() == '0-1-10,1-2-7'


# --- the snapshot pipe, with stand-ins for mariadb-dump and mariadb ---------------------------------

def test_copy_snapshot(tmp_path):
    out = tmp_path / 'loaded.sql'
    dump = [sys.executable, '-c', 'import sys; sys.stdout.buffer.write(%r * 5000 + %r)' % (b'INSERT x;\n', DUMP_TAIL)]
    load = [sys.executable, '-c', 'import sys, shutil; shutil.copyfileobj(sys.stdin.buffer, open(%r, "wb"))' % str(out)]
    position, error, copied = rep.copy_snapshot(dump, load)
    assert error is None and position == '0-1-10,1-2-7'
    assert copied == out.stat().st_size == 50000 + len(DUMP_TAIL)


def test_copy_snapshot_load_failure(tmp_path):
    dump = [sys.executable, '-c', 'import sys; sys.stdout.buffer.write(b"x" * 1000000)']
    load = [sys.executable, '-c', 'import sys; sys.stdin.read(10); sys.stderr.write("ERROR 1146 at line 1"); sys.exit(1)']
    position, error, copied = rep.copy_snapshot(dump, load)
    assert 'loading it into the replica failed (mariadb exit 1): ERROR 1146 at line 1' == error


def test_copy_snapshot_dump_failure_and_no_position():
    load = [sys.executable, '-c', 'import sys; sys.stdin.read()']
    dump = [sys.executable, '-c', 'import sys; sys.stderr.write("Got error: 1045"); sys.exit(2)']
    assert rep.copy_snapshot(dump, load)[1] == 'mariadb-dump failed (exit 2): Got error: 1045'
    dump = [sys.executable, '-c', 'print("-- no position")']
    assert 'holds no GTID position' in rep.copy_snapshot(dump, load)[1]
