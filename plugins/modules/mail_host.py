#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: mail_host
short_description: Manage the mailbox hosts (shards) of the mail database
version_added: 0.1.0
description:
  - Adds, changes or removes a row of the C(mailbox_host) table of the mail database. Each mailbox
    records the host that stores it; in the sharded topology Postfix relays to that host and the
    Dovecot proxies forward IMAP/POP3 to it.
  - The host state decides placement of new mailboxes by M(mailops.mailstack.mail_user) -
    C(active) hosts take new users, C(draining) hosts keep their users but take no new ones
    (they are being emptied), C(readonly) hosts take no new users either.
  - No existing module manages this schema (it is this collection's own), hence this module.
options:
  name:
    description:
      - Name of the mailbox host, as recorded in C(mailbox.mailbox_host) (usually its inventory name).
    type: str
    required: true
  address:
    description:
      - Address (host name or IP) other tiers use to reach the host's LMTP and IMAP services.
      - Required when the host is created; kept when omitted.
    type: str
  host_state:
    description:
      - Whether the host accepts new mailboxes (V(active)) or not (V(draining), V(readonly)).
      - When omitted, V(active) on creation and unchanged otherwise.
    type: str
    choices: [active, draining, readonly]
  weight:
    description:
      - Relative share of new mailboxes under the C(weighted) and C(stable_hash) placement
        policies of M(mailops.mailstack.mail_user); V(0) takes none.
      - When omitted, V(100) on creation and unchanged otherwise.
    type: int
  state:
    description:
      - V(present) creates or updates the host, V(absent) removes it.
      - Removing a host that still stores mailboxes fails; move the mailboxes first.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mailops.mailstack.maildb
  - mailops.mailstack.maildb.attributes
seealso:
  - module: mailops.mailstack.mail_user
author:
  - mailstack developers (@mailops)
'''

EXAMPLES = r'''
- name: Two mailbox shards
  mailops.mailstack.mail_host:
    name: "{{ item.name }}"
    address: "{{ item.address }}"
    weight: 100
    login_unix_socket: /run/mysqld/mysqld.sock
  loop:
    - {name: store1, address: 10.0.0.11}
    - {name: store2, address: 10.0.0.12}

- name: Stop placing new users on store1
  mailops.mailstack.mail_host:
    name: store1
    host_state: draining
    login_unix_socket: /run/mysqld/mysqld.sock
'''

RETURN = r'''
host:
  description: The host row after the run (before it, when removed); absent if there was none.
  returned: when the host exists before or after the run
  type: dict
  sample: {name: store1, address: 10.0.0.11, host_state: active, weight: 100, mailboxes: 1520}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import (
    connect, db_error_text, maildb_argument_spec, pymysql, require_schema,
)


def main():
    argument_spec = maildb_argument_spec()
    argument_spec.update(
        name=dict(type='str', required=True),
        address=dict(type='str'),
        host_state=dict(type='str', choices=['active', 'draining', 'readonly']),
        weight=dict(type='int'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    name = p['name'].strip()
    if not name or len(name) > 255:
        module.fail_json(msg='name: must be 1 to 255 characters')
    if p['weight'] is not None and not 0 <= p['weight'] <= 4294967295:
        module.fail_json(msg='%s: weight: must be 0 or more, got %d' % (name, p['weight']))
    if p['address'] is not None and not p['address'].strip():
        module.fail_json(msg='%s: address: must not be empty' % name)

    conn = connect(module)
    try:
        require_schema(module, conn, 1)
        cur = conn.cursor()
        cur.execute('SELECT name, address, state, weight FROM mailbox_host WHERE name = %s', (name,))
        row = cur.fetchone()
        cur.execute('SELECT COUNT(*) FROM mailbox WHERE mailbox_host = %s', (name,))
        mailboxes = int(cur.fetchone()[0])
        before = None
        if row:
            before = dict(name=row[0], address=row[1], host_state=row[2], weight=int(row[3]), mailboxes=mailboxes)
        after = None
        if p['state'] == 'present':
            if before is None and p['address'] is None:
                module.fail_json(msg='%s: address: required to create a mailbox host' % name)
            after = dict(before or dict(name=name, host_state='active', weight=100, mailboxes=0))
            for opt in ('address', 'host_state', 'weight'):
                if p[opt] is not None:
                    after[opt] = p[opt].strip() if opt == 'address' else p[opt]
        elif before is not None and mailboxes:
            module.fail_json(msg='%s: state: cannot remove a mailbox host that stores %d mailbox(es); '
                             'move them to another host first' % (name, mailboxes))
        changed = before != after
        if changed and not module.check_mode:
            if after is None:
                cur.execute('DELETE FROM mailbox_host WHERE name = %s', (name,))
            elif before is None:
                cur.execute('INSERT INTO mailbox_host (name, address, state, weight) VALUES (%s, %s, %s, %s)',
                            (name, after['address'], after['host_state'], after['weight']))
            else:
                cur.execute('UPDATE mailbox_host SET address = %s, state = %s, weight = %s WHERE name = %s',
                            (after['address'], after['host_state'], after['weight'], name))
            conn.commit()
    except pymysql.err.MySQLError as e:
        conn.rollback()
        module.fail_json(msg='%s: database error, nothing was changed: %s' % (name, db_error_text(e)))
    finally:
        conn.close()

    result = dict(changed=changed)
    if after or before:
        result['host'] = after or before
    if module._diff:
        result['diff'] = dict(before=before or {}, after=after or {})
    module.exit_json(**result)


if __name__ == '__main__':
    main()
