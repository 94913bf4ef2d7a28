#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: mail_alias
short_description: Manage mail aliases (source to destinations) in the Postfix/Dovecot mail database
version_added: 0.1.0
description:
  - Manages the C(alias) table that Postfix reads as C(virtual_alias_maps) - mail for a source
    address goes to one or more destination addresses.
  - One row per (source, destination) pair, so the Postfix query returns every destination.
  - Takes one alias (O(source)) or a list (O(aliases)) applied in one transaction; everything is
    validated before anything is written.
  - Why a module of our own - no existing module provisions a Postfix/Dovecot virtual-user schema.
options:
  source:
    description:
      - The alias address, or C(@domain) for a catch-all. Its domain must exist
        (M(mailops.mailstack.mail_domain)) when O(state=present).
      - Mutually exclusive with O(aliases).
    type: str
  destinations:
    description:
      - Addresses the source delivers to (any domain). With O(state=present) they become the
        complete list for O(source); other destinations of the source are removed.
      - With O(state=absent), only these destinations are removed; when omitted, the whole alias is.
    type: list
    elements: str
    aliases: [destination]
  active:
    description:
      - Whether the alias is in service. When omitted, V(true) on creation and unchanged otherwise.
    type: bool
  state:
    description:
      - V(present) or V(absent). For O(aliases), the default of entries without their own C(state).
    type: str
    choices: [present, absent]
    default: present
  aliases:
    description:
      - Bulk form - a list of aliases applied in one transaction. Each entry is a dict with the keys
        C(source) (required), C(destinations) (a list, or a string of addresses separated by commas
        or spaces), C(active) and C(state), meaning the same as the options of that name.
      - Mutually exclusive with O(source).
    type: list
    elements: dict
  report_items:
    description:
      - Also return the sources of created, updated, unchanged and removed aliases in RV(items).
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mailops.mailstack.maildb
  - mailops.mailstack.maildb.mail_database
  - mailops.mailstack.maildb.attributes
seealso:
  - module: mailops.mailstack.mail_domain
  - module: mailops.mailstack.mail_user
author:
  - mailstack developers (@mailops)
'''

EXAMPLES = r'''
- name: postmaster goes to two people
  mailops.mailstack.mail_alias:
    source: postmaster@example.org
    destinations: [alice@example.org, bob@example.net]
    login_unix_socket: /run/mysqld/mysqld.sock

- name: Many aliases in one task
  mailops.mailstack.mail_alias:
    aliases:
      - {source: info@example.org, destinations: [alice@example.org]}
      - {source: "@old.example.org", destinations: catchall@example.org}
      - {source: sales@example.org, state: absent}
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
created:
  description: Number of aliases (sources) created.
  returned: always
  type: int
  sample: 1
updated:
  description: Number of aliases whose destinations or active flag changed.
  returned: always
  type: int
  sample: 0
unchanged:
  description: Number of aliases already as requested.
  returned: always
  type: int
  sample: 0
removed:
  description: Number of aliases (or, for partial removals, sources) removed.
  returned: always
  type: int
  sample: 0
items:
  description: Sources by outcome.
  returned: when O(report_items=true)
  type: dict
  contains:
    created:
      description: Sources created.
      type: list
      elements: str
    updated:
      description: Sources changed.
      type: list
      elements: str
    unchanged:
      description: Sources left as they were.
      type: list
      elements: str
    removed:
      description: Sources removed (wholly or partly).
      type: list
      elements: str
alias:
  description: The alias after the run (single form).
  returned: when O(source) is used
  type: dict
  sample: {source: postmaster@example.org, destinations: [alice@example.org], active: true}
errors:
  description: Every validation error (up to 1000) when the input is rejected.
  returned: failure
  type: list
  elements: str
'''

import re

from ansible_collections.mailops.mailstack.plugins.module_utils.bulk import STATES, BulkModule, entry_key
from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import chunks, executemany, select_in
from ansible_collections.mailops.mailstack.plugins.module_utils.rows import INSERT_ALIAS_SQL, AliasEntry, AliasValues
from ansible_collections.mailops.mailstack.plugins.module_utils.validation import (
    normalize_email, parse_bool, parse_choice, split_email,
)

ENTRY_KEYS = ('source', 'destinations', 'destination', 'active', 'state')


def parse_destinations(value):
    if isinstance(value, str):
        value = [v for v in re.split(r'[\s,;]+', value) if v]
    if not isinstance(value, (list, tuple)):
        raise ValueError('must be a list of addresses')
    out = []
    for v in value:
        try:
            d = normalize_email(v)
        except ValueError as e:
            raise ValueError(str(e))
        if d not in out:
            out.append(d)
    return out


class MailAlias(BulkModule):
    argument_spec = dict(
        source=dict(type='str'),
        destinations=dict(type='list', elements='str', aliases=['destination']),
        active=dict(type='bool'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        aliases=dict(type='list', elements='dict'),
        report_items=dict(type='bool', default=False),
    )
    module_options = dict(mutually_exclusive=[('source', 'aliases')], required_one_of=[('source', 'aliases')])
    list_option = 'aliases'
    single_key = 'alias'

    def validate(self):
        """self.entries: one AliasEntry per valid entry."""
        p = self.params
        bulk = p['aliases'] is not None
        raw = p['aliases'] if bulk else [dict(source=p['source'], destinations=p['destinations'],
                                              active=p['active'], state=p['state'])]
        self.entries = []
        seen = {}
        for position, entry in enumerate(raw):
            index = position if bulk else None
            checked = self.validate_entry(index, entry)
            if checked and not self.is_duplicate(seen, index, checked.source, 'source', position):
                self.entries.append(checked)

    def validate_entry(self, index, entry):
        """An AliasEntry, or None when the source is missing or invalid."""
        key = entry_key(entry, 'source')
        for field in sorted(set(entry) - set(ENTRY_KEYS)):
            self.errors.add(index, key, field, 'unknown field (allowed: source, destinations, active, state)')
        address = self.parse_required(index, key, 'source', entry.get('source'),
                                      lambda value: split_email(value, allow_catchall=True))
        if address is None:
            return None
        source, domain = address[0], address[2]
        state = self.parse_value(index, source, 'state', entry.get('state'), parse_choice, self.params['state'], STATES)
        active = self.parse_value(index, source, 'active', entry.get('active'), parse_bool)
        destinations = None
        try:
            value = entry.get('destinations', entry.get('destination'))
            if value is not None:
                destinations = parse_destinations(value)
            if state == 'present' and not destinations:
                raise ValueError('at least one destination is required')
        except ValueError as exc:
            self.errors.add(index, source, 'destinations', str(exc))
        return AliasEntry(index, source, domain, destinations, active, state)

    def read(self, cursor):
        sources = [entry.source for entry in self.entries]
        self.existing = {}
        for source, destination, active in select_in(
                cursor, 'SELECT source, destination, active FROM alias WHERE source', sources):
            self.existing.setdefault(source, {})[destination] = bool(active)
        domains = set(entry.domain for entry in self.entries if entry.state == 'present')
        self.known_domains = set(row[0] for row in select_in(cursor, 'SELECT name FROM domain WHERE name',
                                                             sorted(domains)))

    def plan(self, cursor):
        self.inserts, self.active_updates, self.deletes = [], [], []
        self.single = None
        for entry in self.entries:
            old = self.existing.get(entry.source, {})
            before = dict(source=entry.source, destinations=sorted(old), active=all(old.values())) if old else {}
            if entry.state == 'absent':
                self.plan_removal(entry, old, before)
            elif entry.domain not in self.known_domains:
                self.errors.add(entry.index, entry.source, 'source', 'domain %r is not present in the mail database '
                                '(add it with mail_domain first)' % entry.domain)
            else:
                self.plan_presence(entry, old, before)

    def plan_removal(self, entry, old, before):
        """Remove the given destinations, or all of them."""
        source = entry.source
        gone = [d for d in (entry.destinations if entry.destinations is not None else sorted(old)) if d in old]
        if not gone:
            self.report.add('unchanged', source)
            self.single = before or None
            return
        self.deletes.extend((source, d) for d in gone)
        left = sorted(set(old) - set(gone))
        self.report.add('removed', source, before,
                        dict(source=source, destinations=left, active=before['active']) if left else {})
        self.single = dict(source=source, destinations=left, active=before['active']) if left else None

    def plan_presence(self, entry, old, before):
        """The destinations become exactly those given."""
        source, destinations, active = entry.source, entry.destinations, entry.active
        for d in destinations:
            if d not in old:
                self.inserts.append(AliasValues(source, d, entry.domain, int(active if active is not None else True)))
            elif active is not None and old[d] != active:
                self.active_updates.append(AliasValues(source, d, entry.domain, int(active)))
        self.deletes.extend((source, d) for d in old if d not in destinations)
        if active is None:
            kept = [old[d] for d in destinations if d in old]
            active = all(kept) if kept else True
        after = dict(source=source, destinations=sorted(destinations), active=active)
        self.single = after
        if not old:
            self.report.add('created', source, {}, after)
        elif after != before or any(d in old and old[d] != active for d in destinations):
            self.report.add('updated', source, before, after)
        else:
            self.report.add('unchanged', source)

    def has_changes(self):
        return bool(self.inserts or self.active_updates or self.deletes)

    def write(self, cursor):
        for part in chunks(self.deletes, 500):
            cursor.execute('DELETE FROM alias WHERE (source, destination) IN (%s)'
                           % ', '.join(['(%s, %s)'] * len(part)), [x for pair in part for x in pair])
        executemany(cursor, INSERT_ALIAS_SQL, self.inserts)
        executemany(cursor, INSERT_ALIAS_SQL + ' ON DUPLICATE KEY UPDATE active = VALUES(active)',
                    self.active_updates)


def main():
    MailAlias().run()


if __name__ == '__main__':
    main()
