# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    # Connection options shared by the mail_* modules (module_utils/maildb.py)
    DOCUMENTATION = r'''
options:
  login_host:
    description:
      - Host running the mail database (MariaDB).
      - Ignored when O(login_unix_socket) is set.
    type: str
    default: localhost
  login_port:
    description:
      - TCP port of the mail database.
    type: int
    default: 3306
  login_user:
    description:
      - The account to connect as; it needs read and write access to the mail tables
        (and DDL rights for M(mailops.mailstack.mail_schema)).
      - When omitted, PyMySQL uses the name of the user running the module, which suits
        C(unix_socket) authentication as root over O(login_unix_socket).
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
  ca_cert:
    description:
      - Path to a CA certificate; when set the connection uses TLS and verifies the server
        certificate against it.
    type: path
  connect_timeout:
    description:
      - Connection timeout in seconds.
    type: int
    default: 30
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
