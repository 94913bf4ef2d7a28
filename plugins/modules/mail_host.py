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
  - mailops.mailstack.maildb.mail_database
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
retries:
  description:
    - Times the transaction ran again after MariaDB ended it with 1213 (a Galera certification conflict, another
      node having changed the same rows first, or a deadlock), from its reads; at most 3, after which the module
      fails with the error.
  returned: always
  type: int
  sample: 0
host:
  description: The host row after the run (before it, when removed); absent if there was none.
  returned: when the host exists before or after the run
  type: dict
  sample: {name: store1, address: 10.0.0.11, host_state: active, weight: 100, mailboxes: 1520}
'''

from ansible_collections.mailops.mailstack.plugins.module_utils.bulk import BulkModule
from ansible_collections.mailops.mailstack.plugins.module_utils.rows import MailboxHostRow, select_sql


class MailHost(BulkModule):
    """One row, so the single form only; fails with plain messages that start with the host's name."""

    argument_spec = dict(
        name=dict(type='str', required=True),
        address=dict(type='str'),
        host_state=dict(type='str', choices=['active', 'draining', 'readonly']),
        weight=dict(type='int'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
    )
    report_invocation = False

    def validate(self):
        p = self.params
        self.name = name = p['name'].strip()
        if not name or len(name) > 255:
            self.module.fail_json(msg='name: must be 1 to 255 characters')
        if p['weight'] is not None and not 0 <= p['weight'] <= 4294967295:
            self.module.fail_json(msg='%s: weight: must be 0 or more, got %d' % (name, p['weight']))
        if p['address'] is not None and not p['address'].strip():
            self.module.fail_json(msg='%s: address: must not be empty' % name)

    def read(self, cursor):
        cursor.execute(select_sql(MailboxHostRow, 'mailbox_host', 'name = %s'), (self.name,))
        row = cursor.fetchone()
        cursor.execute('SELECT COUNT(*) FROM mailbox WHERE mailbox_host = %s', (self.name,))
        self.mailboxes = int(cursor.fetchone()[0])
        self.before = None
        if row:
            row = MailboxHostRow._make(row)
            self.before = dict(name=row.name, address=row.address, host_state=row.state, weight=int(row.weight),
                               mailboxes=self.mailboxes)

    def plan(self, cursor):
        p = self.params
        self.after = None
        if p['state'] == 'present':
            if self.before is None and p['address'] is None:
                self.module.fail_json(msg='%s: address: required to create a mailbox host' % self.name)
            self.after = dict(self.before or dict(name=self.name, host_state='active', weight=100, mailboxes=0))
            for option in ('address', 'host_state', 'weight'):
                if p[option] is not None:
                    self.after[option] = p[option].strip() if option == 'address' else p[option]
        elif self.before is not None and self.mailboxes:
            self.module.fail_json(msg='%s: state: cannot remove a mailbox host that stores %d mailbox(es); '
                                  'move them to another host first' % (self.name, self.mailboxes))

    def has_changes(self):
        return self.before != self.after

    def write(self, cursor):
        after = self.after
        if after is None:
            cursor.execute('DELETE FROM mailbox_host WHERE name = %s', (self.name,))
        elif self.before is None:
            cursor.execute('INSERT INTO mailbox_host (name, address, state, weight) VALUES (%s, %s, %s, %s)',
                           (self.name, after['address'], after['host_state'], after['weight']))
        else:
            cursor.execute('UPDATE mailbox_host SET address = %s, state = %s, weight = %s WHERE name = %s',
                           (after['address'], after['host_state'], after['weight'], self.name))

    def database_error_message(self, text):
        return '%s: database error, nothing was changed: %s' % (self.name, text)

    def result(self):
        result = dict(changed=self.has_changes())
        if self.after or self.before:
            result['host'] = self.after or self.before
        if self.module._diff:
            result['diff'] = dict(before=self.before or {}, after=self.after or {})
        return result


def main():
    MailHost().run()


if __name__ == '__main__':
    main()
