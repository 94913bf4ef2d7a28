# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    # The connection options of every module that talks to MariaDB
    # (mariadb_connection_spec in module_utils/maildb.py), written once.
    DOCUMENTATION = r'''
options:
  login_port:
    description:
      - TCP port of the server, with O(login_host).
    type: int
    default: 3306
  login_user:
    description:
      - The account to connect as (the notes say which rights it needs).
      - When omitted, PyMySQL uses the name of the user running the module, which suits
        C(unix_socket) authentication as root over the socket.
    type: str
  login_password:
    description:
      - The password of O(login_user).
    type: str
  login_unix_socket:
    description:
      - Path to the server's Unix socket, for example C(/run/mysqld/mysqld.sock). When set,
        O(login_host) and O(login_port) are ignored.
    type: str
  connect_timeout:
    description:
      - Connection timeout in seconds (M(mailops.mailstack.mariadb_replica) uses it for the primary too).
    type: int
    default: 30
'''

    # The mail database modules (maildb_argument_spec) add TLS and the
    # database to the connection: mailops.mailstack.maildb.mail_database.
    MAIL_DATABASE = r'''
options:
  login_host:
    description:
      - The MariaDB servers, reached over TCP, tried in this order; the module uses the first that
        accepts the connection and takes writes, passing over one that refuses, is read-only (a
        replica) or is a Galera node outside the primary component (C(wsrep_ready) not C(ON)). The
        error names every server tried and why. One host may be given as a string.
      - Ignored when O(login_unix_socket) is set. When neither is given, V(localhost) over TCP.
    type: list
    elements: str
  ca_cert:
    description:
      - Path to a CA certificate; when set the connection uses TLS and verifies the server
        certificate against it.
    type: path
  database:
    description:
      - Name of the mail database.
    type: str
    default: mail
    aliases: [login_db]
requirements:
  - PyMySQL on the host that runs the module.
notes:
  - The mail schema must exist (M(mailops.mailstack.mail_schema) or the C(mail_database) role).
  - O(login_user) needs read and write access to the mail tables (and DDL rights for
    M(mailops.mailstack.mail_schema)).
'''

    # The one server of the replication modules, which run on the replica
    # host: mailops.mailstack.maildb.replica_host.
    REPLICA_HOST = r'''
options:
  login_host:
    description:
      - Host of the MariaDB server, reached over TCP. Ignored when O(login_unix_socket) is set.
      - When neither this nor O(login_unix_socket) is given, the module connects to the replica host's
        own socket C(/run/mysqld/mysqld.sock) (Debian's).
    type: str
'''

    # Attributes shared by the mail database modules; a module states only
    # where it differs (mailops.mailstack.maildb.attributes).
    ATTRIBUTES = r'''
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
'''
