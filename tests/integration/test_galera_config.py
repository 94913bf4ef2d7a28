# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mail_database role's Galera configuration (its template, galera
mode) on three real nodes (mailstack_testlib.galera.ConfiguredNode: the
rendered file is each node's option file; only the data directory, socket
and log come from the command line), each on its own loopback address with
Galera's default ports, each with a certificate of a test CA naming its
address (as the tls wiring gives every node):

- the group and IST run over TLS (socket.ssl with the CA): every node
  listens at ssl://<its address>:4567 (gmcast.listen_addr: not every
  address), the IST receiver uses ssl;
- the joiners get their state by mariabackup SST over TLS ([sst] ssl-mode =
  VERIFY_IDENTITY: encrypt=3, socat openssl with the CA on both ends) as
  mysql@localhost by unix_socket (wsrep-sst-auth = mysql:);
- a row written on one node is read on another; the cluster's size is 3.

What 10.11.19's wsrep_sst_mariabackup checks with VERIFY_IDENTITY (read
there): the joiner sends its own certificate's CN with a secret, and the
donor's socat checks the joiner's certificate against that CN and the CA
(commonname), not against the joiner's address. Red seen by hand: node3
with a certificate of another CA never joins (TLS handshake refused).

Skipped when the default Galera ports are taken on those addresses.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import socket
import subprocess

import pytest

from mailstack_testlib.galera import Cluster, ConfiguredNode, free_ports
from mailstack_testlib.templates import render

# One worker runs every test of the Galera cluster (scripts/test.sh: --dist loadgroup): one cluster per session.
pytestmark = pytest.mark.xdist_group('galera')

ADDRESSES = ('127.0.4.1', '127.0.4.2', '127.0.4.3')
TEMPLATE = 'etc/mysql/mariadb.conf.d/60-mailstack.cnf.j2'


def _openssl(*args):
    subprocess.run(['openssl'] + list(args), check=True, capture_output=True, timeout=60)


def _certificates(d, addresses):
    _openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', d + '/ca.key', '-out', d + '/ca.pem',
             '-days', '2', '-subj', '/CN=Galera test CA')
    for address in addresses:
        base = '%s/%s' % (d, address)
        _openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', base + '.key', '-out', base + '.csr',
                 '-subj', '/CN=node-%s' % address)
        with open(base + '.ext', 'w') as f:
            f.write('subjectAltName=IP:%s\n' % address)
        _openssl('x509', '-req', '-in', base + '.csr', '-CA', d + '/ca.pem', '-CAkey', d + '/ca.key',
                 '-CAcreateserial', '-out', base + '.pem', '-days', '2', '-extfile', base + '.ext')


def _free(address, port):
    s = socket.socket()
    try:
        s.bind((address, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class RoleCluster(Cluster):
    node_class = ConfiguredNode

    def __init__(self):
        sql_port = free_ports(ADDRESSES, 1)[0]
        Cluster.__init__(self, addresses=ADDRESSES, ports=(sql_port, 4567, 4568, 4444))
        # In the cluster's directory: mysql reads the key (the tls role makes it root:ssl-cert 0640).
        self.certs = os.path.join(self.tmp, 'certs')
        os.makedirs(self.certs)
        _certificates(self.certs, ADDRESSES)
        self.own(self.certs)

    def start(self):
        for node in self.nodes:
            node.install()
        first = self.nodes[0]
        first.start(bootstrap=True)
        # The SST's login (wsrep-sst-auth = mysql:): mysql@localhost by
        # unix_socket, as Debian's mariadb-install-db makes it (this one,
        # with a root by password, does not).
        conn = first.root()
        with conn.cursor() as cur:
            cur.execute("CREATE USER IF NOT EXISTS 'mysql'@'localhost' IDENTIFIED VIA unix_socket")
            cur.execute("GRANT ALL ON *.* TO 'mysql'@'localhost'")
        conn.close()
        for node in self.nodes[1:]:
            node.start()
        self.setup_mail()
        return self

    def configure(self, node):
        # Here a node's connections to 127.0.4.x leave from 127.0.0.1 (lo's
        # first address): the allowlist must take it (on a real host they
        # leave from the node's address).
        return self._render(node).replace('wsrep-allowlist = ', 'wsrep-allowlist = 127.0.0.1,')

    def _render(self, node):
        return render('mail_database', TEMPLATE, mail_database_mode='galera', mail_database_tls=True,
                      mail_database_bind_address=node.address, mail_database_port=self.sql_port,
                      mail_database_galera_nodes=list(self.addresses), mail_database_galera_node_address=node.address,
                      mail_database_galera_ca_file=self.certs + '/ca.pem',
                      mail_database_tls_cert_file='%s/%s.pem' % (self.certs, node.address),
                      mail_database_tls_key_file='%s/%s.key' % (self.certs, node.address),
                      mail_database_galera_gcache_size='32M', inventory_hostname=node.name,
                      mail_database_server_settings={'innodb-buffer-pool-size': '64M',
                                                     'innodb-log-file-size': '48M'})


@pytest.fixture
def role_cluster():
    busy = ['%s:%d' % (a, p) for a in ADDRESSES for p in (4567, 4568, 4444) if not _free(a, p)]
    if busy:
        pytest.fail('Galera default ports taken (the role renders them; free them to run this test): %s' % ', '.join(busy))
    cluster = RoleCluster()
    try:
        yield cluster
    finally:
        cluster.destroy()


def test_the_role_configuration_makes_a_tls_cluster_with_a_verified_mariabackup_sst(role_cluster):
    cluster = role_cluster
    cluster.start()
    first, second, third = cluster.nodes
    assert cluster.size(third) == 3
    conn = first.root()
    with conn.cursor() as cur:
        cur.execute('CREATE TABLE mail.tls_probe (id INT PRIMARY KEY)')
        cur.execute('INSERT INTO mail.tls_probe VALUES (42)')
    conn.close()
    conn = third.root()
    with conn.cursor() as cur:
        cur.execute('SELECT id FROM mail.tls_probe')
        assert cur.fetchone()[0] == 42
    conn.close()
    donor = first.log_text()
    assert 'Encrypting with cert=' in donor and 'mariabackup SST completed on donor' in donor, donor[-3000:]
    for node in cluster.nodes:
        # The group over TLS, on the node's own address only.
        assert 'listening at ssl://%s:4567' % node.address in node.log_text(), node.log_text()[-3000:]
    for joiner in (second, third):
        log = joiner.log_text()
        for line in ('IST receiver using ssl', "MODE='VERIFY_IDENTITY', encrypt='3'", 'Decrypting with cert=',
                     'mariabackup SST completed on joiner'):
            assert line in log, (joiner.name, line, log[-3000:])
