# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Dovecot verifies the mail database's certificate: the role's SQL file and
option file (roles/dovecot, rendered from their templates) in a Dovecot of
the test's own, against a throw-away MariaDB serving TLS on its socket (as
`localhost` is on a database host whose readers list other servers too).

A certificate of the site CA that names localhost: `doveadm auth test` logs
in. One of the same CA that does not name it: refused. libmariadb, which
Dovecot links, reads a bare `ssl-verify-server-cert` in an option file as
0: with that line, the second login succeeded (seen red).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import shutil
import subprocess

import pytest

from mailstack_testlib import dovecot
from mailstack_testlib.mariadb import Database, MariaDB
from mailstack_testlib.templates import render

READER, READER_PASSWORD = 'mail_dovecot', 'D0vecot-pw-for-tests'
OPTION_GROUP = 'mailstack-dovecot'


def _openssl(*args):
    subprocess.run(['openssl'] + list(args), check=True, capture_output=True, timeout=60)


def _certificates(d):
    """A CA, and two server certificates of it: one naming localhost, one not."""
    _openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', d + '/ca.key', '-out', d + '/ca.pem',
             '-days', '2', '-subj', '/CN=Test CA')
    _openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', d + '/server.key', '-out', d + '/server.csr',
             '-subj', '/CN=db.example.test')
    for name, names in (('right', 'DNS:db.example.test,DNS:localhost'), ('wrong', 'DNS:db.example.test')):
        with open('%s/%s.ext' % (d, name), 'w') as f:
            f.write('subjectAltName=%s\n' % names)
        _openssl('x509', '-req', '-in', d + '/server.csr', '-CA', d + '/ca.pem', '-CAkey', d + '/ca.key',
                 '-CAcreateserial', '-out', '%s/%s.pem' % (d, name), '-days', '2', '-extfile', '%s/%s.ext' % (d, name))


@pytest.fixture
def server(tmp_path):
    certs = str(tmp_path / 'certs')
    os.makedirs(certs)
    _certificates(certs)
    shutil.copy(certs + '/right.pem', certs + '/server.pem')
    db = MariaDB(options=['--ssl-ca=%s/ca.pem' % certs, '--ssl-cert=%s/server.pem' % certs,
                          '--ssl-key=%s/server.key' % certs])
    db.start()
    data = Database(db)
    data.execute("INSERT INTO domain (name) VALUES ('example.test')")
    data.execute("INSERT INTO mailbox (email, local_part, domain, password, maildir) "
                 "VALUES ('u@example.test', 'u', 'example.test', '{PLAIN}x', 'u/')")
    # TLS required: a login proves the connection was encrypted.
    data.execute("CREATE USER '%s'@'localhost' IDENTIFIED BY '%s' REQUIRE SSL" % (READER, READER_PASSWORD))
    data.execute("GRANT SELECT ON mail.* TO '%s'@'localhost'" % READER)
    data.close()
    try:
        yield db, certs
    finally:
        db.stop()


def _dovecot(tmp, socket, ca):
    """Writes the role's files for a Dovecot reading socket over TLS; its conf."""
    option_file = os.path.join(tmp, 'mailstack-db.cnf')
    sql = render('dovecot', 'etc/dovecot/dovecot-sql.conf.ext.j2', dovecot_mode='store', dovecot_db_ca_file=ca,
                 dovecot_db_hosts=[socket], dovecot_db_user=READER, dovecot_db_password=READER_PASSWORD,
                 dovecot_proxy_networks=[], dovecot_lmtp_proxy=False, dovecot_login_proxy_maybe=False,
                 dovecot__db_option_file=option_file, dovecot__db_option_group=OPTION_GROUP)
    with open(option_file, 'w') as f:
        f.write(render('dovecot', 'etc/dovecot/mailstack-db.cnf.j2', dovecot_db_ca_file=ca,
                       dovecot__db_option_group=OPTION_GROUP))
    return dovecot.write_conf(tmp, sql)


def _login(conf):
    """A fresh Dovecot (new connections) and one `doveadm auth test`."""
    dovecot.start(conf)
    try:
        return dovecot.auth_test(conf)
    finally:
        dovecot.stop(conf)


def test_dovecot_refuses_a_certificate_that_does_not_name_the_server(server, tmp_path):
    dovecot.require()
    db, certs = server
    tmp = str(tmp_path / 'dovecot')
    os.makedirs(tmp)
    conf = _dovecot(tmp, db.socket, certs + '/ca.pem')
    good = _login(conf)
    assert good.returncode == 0 and 'auth succeeded' in good.stdout, good
    # The same CA, a certificate without the name: refused.
    shutil.copy(certs + '/wrong.pem', certs + '/server.pem')
    root = db.root()
    with root.cursor() as cur:
        cur.execute('FLUSH SSL')
    root.close()
    bad = _login(conf)
    assert bad.returncode != 0 and 'auth succeeded' not in bad.stdout, bad
    with open(os.path.join(tmp, 'dovecot.log')) as f:
        assert 'Validation of SSL server certificate failed' in f.read()
