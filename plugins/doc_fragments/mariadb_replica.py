# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    # The replication connection and what the replica login needs, shared by
    # mariadb_replica and mariadb_replica_info (module_utils/replication.py);
    # the login itself is mailops.mailstack.maildb.
    DOCUMENTATION = r'''
options:
  connection_name:
    description:
      - The replication connection (MariaDB multi-source replication). The default, the empty
        string, is the connection that C(CHANGE MASTER TO) without a name configures.
    type: str
    default: ''
requirements:
  - PyMySQL on the replica host (the host that runs the module).
notes:
  - O(login_user) is an account on the replica. It needs C(SUPER) (or C(REPLICATION SLAVE ADMIN),
    C(SLAVE MONITOR) and, to load a snapshot, C(BINLOG ADMIN) and the rights to create the
    snapshot's databases) - in practice C(root).
  - The modules are meant to run on the replica host itself; M(mailops.mailstack.mariadb_replica)
    also runs the C(mariadb) client there to load a snapshot.
'''

    # The connections to the primary (mariadb_replica).
    PRIMARY = r'''
options:
  primary_host:
    description:
      - Host name or address of the primary, as the replica reaches it. Required for
        O(state=started).
      - Use an address or a name that resolves to one; V(localhost) would make the replica's
        IO thread use its own socket.
    type: str
  primary_port:
    description:
      - TCP port of the primary.
    type: int
    default: 3306
  primary_user:
    description:
      - The replication account on the primary (C(MASTER_USER)); it needs C(REPLICATION SLAVE).
    type: str
    default: replicator
  primary_password:
    description:
      - Password of O(primary_user) (C(MASTER_PASSWORD)). Required for O(state=started).
      - At most 96 characters, without line breaks (MariaDB's limits for C(MASTER_PASSWORD)).
      - Never returned or logged, and never put on a command line.
    type: str
  primary_login_user:
    description:
      - An administrative account on the primary, used only to create the replication account
        (O(create_primary_user)) and to take the snapshot of an empty replica.
      - For the snapshot it needs C(SELECT), C(SHOW VIEW), C(TRIGGER) and C(LOCK TABLES) on
        O(databases); to create the account, C(CREATE USER) and C(REPLICATION SLAVE) with
        C(GRANT OPTION). C(root) over TCP has them.
    type: str
  primary_login_password:
    description:
      - Password of O(primary_login_user). Never returned or logged; the snapshot tools read it
        from a temporary option file (mode 0600), never from their command line.
    type: str
  primary_ssl:
    description:
      - Whether the replica talks to the primary over TLS (C(MASTER_SSL)); the pre-flight
        connections and the snapshot use TLS too.
    type: bool
    default: false
  primary_ssl_ca:
    description:
      - CA certificate (a path on the replica host) that signed the primary's certificate
        (C(MASTER_SSL_CA)). Only with O(primary_ssl=true).
    type: path
  primary_ssl_verify_server_cert:
    description:
      - Whether the replica verifies the primary's certificate and host name
        (C(MASTER_SSL_VERIFY_SERVER_CERT)). Only with O(primary_ssl=true).
    type: bool
    default: false
'''
