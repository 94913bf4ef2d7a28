#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: mail_domain
short_description: Manage the mail domains of the Postfix/Dovecot mail database
version_added: 0.1.0
description:
  - Adds, changes or removes domains in the C(domain) table of the mail database that Postfix
    (C(virtual_mailbox_domains), C(relay_domains)) and Dovecot read.
  - Takes one domain (O(name)) or a list (O(domains)) applied in one transaction; everything is
    validated before anything is written.
  - Why a module of our own - no existing module provisions a Postfix/Dovecot virtual-user
    schema; M(community.mysql.mysql_query) could run the SQL but not validate, batch, report
    counts, diff or stay idempotent.
options:
  name:
    description:
      - The domain (lower-cased; internationalized names are stored in IDNA/punycode form).
      - Mutually exclusive with O(domains).
    type: str
    aliases: [domain]
  kind:
    description:
      - V(local) - mail for the domain is delivered to mailboxes here.
      - V(relay) - the domain is only relayed (a backup MX that queues for the primary).
      - When omitted, V(local) on creation and unchanged otherwise.
    type: str
    choices: [local, relay]
  active:
    description:
      - Whether the domain is in service. When omitted, V(true) on creation and unchanged otherwise.
    type: bool
  state:
    description:
      - V(present) creates or updates, V(absent) removes. For O(domains), the default of entries
        that do not set their own C(state).
      - Removing a domain that still has mailboxes or aliases fails; remove them first.
    type: str
    choices: [present, absent]
    default: present
  domains:
    description:
      - Bulk form - a list of domains applied in one transaction. Each entry is a dict with the
        keys C(name) (required), C(kind), C(active) and C(state), meaning the same as the
        options of that name; a plain string is taken as C(name).
      - Mutually exclusive with O(name).
    type: list
    elements: raw
  report_items:
    description:
      - Also return the names of the created, updated, unchanged and removed domains in RV(items).
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mailops.mailstack.maildb
  - mailops.mailstack.maildb.attributes
seealso:
  - module: mailops.mailstack.mail_user
  - module: mailops.mailstack.mail_alias
  - module: mailops.mailstack.mail_schema
author:
  - mailstack developers (@mailops)
'''

EXAMPLES = r'''
- name: A local domain
  mailops.mailstack.mail_domain:
    name: example.org
    login_unix_socket: /run/mysqld/mysqld.sock

- name: A domain the backup MX only relays
  mailops.mailstack.mail_domain:
    name: example.net
    kind: relay
    login_host: db.example.org
    login_user: mailadmin
    login_password: "{{ vault_mailadmin_password }}"

- name: Many domains in one task
  mailops.mailstack.mail_domain:
    domains:
      - example.com
      - {name: old.example.com, active: false}
      - {name: gone.example.com, state: absent}
    login_unix_socket: /run/mysqld/mysqld.sock
'''

RETURN = r'''
created:
  description: Number of domains created (or that would be, in check mode).
  returned: always
  type: int
  sample: 1
updated:
  description: Number of domains changed.
  returned: always
  type: int
  sample: 0
unchanged:
  description: Number of domains already as requested.
  returned: always
  type: int
  sample: 2
removed:
  description: Number of domains removed.
  returned: always
  type: int
  sample: 0
items:
  description: Names by outcome.
  returned: when O(report_items=true)
  type: dict
  contains:
    created:
      description: Domains created.
      type: list
      elements: str
    updated:
      description: Domains changed.
      type: list
      elements: str
    unchanged:
      description: Domains left as they were.
      type: list
      elements: str
    removed:
      description: Domains removed.
      type: list
      elements: str
domain:
  description: The domain after the run (single form; before it, when removed).
  returned: when O(name) is used and the domain exists before or after the run
  type: dict
  sample: {name: example.org, kind: local, active: true}
errors:
  description: Every validation error (up to 1000) when the input is rejected.
  returned: failure
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import (
    EntryErrors, Report, connect, db_error_text, delete_in, executemany, invocation,
    maildb_argument_spec, pymysql, require_schema, select_in,
)
from ansible_collections.mailops.mailstack.plugins.module_utils.validation import (
    normalize_domain, parse_bool, parse_choice,
)

ENTRY_KEYS = ('name', 'kind', 'active', 'state')


def collect(module, errors):
    """Validated entries: list of (index, name, kind, active, state)."""
    p = module.params
    if p['domains'] is None:
        raw = [dict(name=p['name'], kind=p['kind'], active=p['active'], state=p['state'])]
    else:
        raw = p['domains']
    entries = []
    seen = {}
    for i, e in enumerate(raw):
        idx = None if p['domains'] is None else i
        if isinstance(e, str):
            e = dict(name=e)
        if not isinstance(e, dict):
            errors.add(idx, None, 'entry', 'must be a dict or a domain name')
            continue
        key = e.get('name') if isinstance(e.get('name'), str) else None
        unknown = sorted(set(e) - set(ENTRY_KEYS))
        for k in unknown:
            errors.add(idx, key, k, 'unknown field (allowed: %s)' % ', '.join(ENTRY_KEYS))
        try:
            if e.get('name') is None:
                raise ValueError('is required')
            name = normalize_domain(e['name'])
        except ValueError as ex:
            errors.add(idx, key, 'name', str(ex))
            continue
        kind = active = None
        state = p['state']
        try:
            if e.get('kind') is not None:
                kind = parse_choice(e['kind'], ('local', 'relay'))
        except ValueError as ex:
            errors.add(idx, name, 'kind', str(ex))
        try:
            if e.get('active') is not None:
                active = parse_bool(e['active'])
        except ValueError as ex:
            errors.add(idx, name, 'active', str(ex))
        try:
            if e.get('state') is not None:
                state = parse_choice(e['state'], ('present', 'absent'))
        except ValueError as ex:
            errors.add(idx, name, 'state', str(ex))
        if name in seen:
            errors.add(idx, name, 'name', 'duplicate of entry %d' % seen[name])
            continue
        seen[name] = i
        entries.append((idx, name, kind, active, state))
    return entries


def main():
    argument_spec = maildb_argument_spec()
    argument_spec.update(
        name=dict(type='str', aliases=['domain']),
        kind=dict(type='str', choices=['local', 'relay']),
        active=dict(type='bool'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        domains=dict(type='list', elements='raw'),
        report_items=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('name', 'domains')],
                           required_one_of=[('name', 'domains')])
    p = module.params
    inv = invocation(p, bulk_keys=('domains',))
    errors = EntryErrors('domains' if p['domains'] is not None else None)
    entries = collect(module, errors)
    if errors:
        errors.fail(module, invocation=inv)

    report = Report(report_items=p['report_items'], want_diff=module._diff)
    conn = connect(module)
    try:
        require_schema(module, conn, 1)
        cur = conn.cursor()
        names = [e[1] for e in entries]
        existing = dict((r[0], (r[1], bool(r[2]))) for r in
                        select_in(cur, 'SELECT name, kind, active FROM domain WHERE name', names))
        absent = [e[1] for e in entries if e[4] == 'absent' and e[1] in existing]
        used = {}
        if absent:
            for table in ('mailbox', 'alias'):
                for dom, n in select_in(cur, 'SELECT domain, COUNT(*) FROM %s WHERE domain' % table, absent,
                                        ' GROUP BY domain'):
                    used.setdefault(dom, []).append('%d %s row(s)' % (n, table))
        inserts, updates, deletes = [], [], []
        single = None
        for idx, name, kind, active, state in entries:
            old = existing.get(name)
            before = dict(name=name, kind=old[0], active=old[1]) if old else None
            single = before
            if state == 'absent':
                if old is None:
                    report.add('unchanged', name)
                elif name in used:
                    errors.add(idx, name, 'state', 'cannot remove a domain that still has %s; remove them first'
                               % ' and '.join(used[name]))
                else:
                    deletes.append(name)
                    report.add('removed', name, before, {})
                continue
            after = dict(name=name, kind=kind or (old[0] if old else 'local'),
                         active=active if active is not None else (old[1] if old else True))
            single = after
            if old is None:
                inserts.append((name, after['kind'], int(after['active'])))
                report.add('created', name, {}, after)
            elif after != before:
                updates.append((name, after['kind'], int(after['active'])))
                report.add('updated', name, before, after)
            else:
                report.add('unchanged', name)
        if errors:
            errors.fail(module, invocation=inv)
        if not module.check_mode and (inserts or updates or deletes):
            executemany(cur, 'INSERT INTO domain (name, kind, active) VALUES (%s, %s, %s)', inserts)
            executemany(cur, 'INSERT INTO domain (name, kind, active) VALUES (%s, %s, %s) '
                        'ON DUPLICATE KEY UPDATE kind = VALUES(kind), active = VALUES(active)', updates)
            delete_in(cur, 'DELETE FROM domain WHERE name', deletes)
            conn.commit()
    except pymysql.err.MySQLError as e:
        conn.rollback()
        module.fail_json(msg='Database error, nothing was changed: %s' % db_error_text(e), invocation=inv)
    finally:
        conn.close()

    result = report.result()
    if p['name'] is not None and single:
        result['domain'] = single
    module.exit_json(invocation=inv, **result)


if __name__ == '__main__':
    main()
