#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: mail_schema
short_description: Create or upgrade the mail database schema
version_added: 0.1.0
description:
  - Applies the versioned migrations of the mail schema (tables C(domain), C(mailbox_host),
    C(mailbox), C(alias) and C(schema_version)) to an existing database.
  - Re-running is a no-op; a newer collection appends migrations and upgrades an older schema
    in order. A database newer than the collection is refused.
  - The C(mail_database) role and the tests use this module, so there is one code path that
    creates the schema.
  - Creating the database itself and its accounts is left to M(community.mysql.mysql_db) and
    M(community.mysql.mysql_user).
options:
  version:
    description:
      - Stop at this schema version instead of the latest one (for upgrade tests).
    type: int
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mailops.mailstack.maildb
  - mailops.mailstack.maildb.mail_database
  - mailops.mailstack.maildb.attributes
attributes:
  diff_mode:
    support: none
author:
  - mailstack developers (@mailops)
'''

EXAMPLES = r'''
- name: Create or upgrade the mail schema
  mailops.mailstack.mail_schema:
    login_unix_socket: /run/mysqld/mysqld.sock
    database: mail
  register: schema

- name: Show what happened
  ansible.builtin.debug:
    msg: "schema {{ schema.version_before }} -> {{ schema.version_after }}"
'''

RETURN = r'''
version_before:
  description: Schema version found (0 when the schema did not exist).
  returned: always
  type: int
  sample: 0
version_after:
  description: Schema version after the run (in check mode, the version it would reach).
  returned: always
  type: int
  sample: 1
latest:
  description: Latest schema version this collection knows.
  returned: always
  type: int
  sample: 1
applied:
  description: Migrations applied (or, in check mode, that would be applied).
  returned: always
  type: list
  elements: str
  sample: ['1: domains, mailbox hosts, mailboxes, aliases']
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import (
    connect, db_error_text, maildb_argument_spec, pymysql,
)
from ansible_collections.mailops.mailstack.plugins.module_utils.schema import (
    LATEST, SchemaError, migrate,
)


def main():
    argument_spec = maildb_argument_spec()
    argument_spec.update(version=dict(type='int'))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    target = module.params['version']
    if target is not None and not 1 <= target <= LATEST:
        module.fail_json(msg='version must be from 1 to %d, got %d' % (LATEST, target))
    conn = connect(module)
    try:
        before, after, applied = migrate(conn, check_mode=module.check_mode, target=target)
    except SchemaError as e:
        module.fail_json(msg=str(e))
    except pymysql.err.MySQLError as e:
        module.fail_json(msg='Schema migration failed: %s' % db_error_text(e))
    finally:
        conn.close()
    module.exit_json(changed=bool(applied), version_before=before, version_after=after,
                     latest=LATEST, applied=applied)


if __name__ == '__main__':
    main()
