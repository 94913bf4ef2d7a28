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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import (
    EntryErrors, Report, connect, db_error_text, executemany, invocation,
    maildb_argument_spec, pymysql, require_schema, select_in,
)
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


def collect(module, errors):
    p = module.params
    bulk = p['aliases'] is not None
    raw = p['aliases'] if bulk else [dict(source=p['source'], destinations=p['destinations'],
                                          active=p['active'], state=p['state'])]
    entries, seen = [], {}
    for i, e in enumerate(raw):
        idx = i if bulk else None
        key = e.get('source') if isinstance(e.get('source'), str) else None
        for k in sorted(set(e) - set(ENTRY_KEYS)):
            errors.add(idx, key, k, 'unknown field (allowed: source, destinations, active, state)')
        try:
            if e.get('source') is None:
                raise ValueError('is required')
            source, local, domain = split_email(e['source'], allow_catchall=True)
        except ValueError as ex:
            errors.add(idx, key, 'source', str(ex))
            continue
        state, active, dests = p['state'], None, None
        try:
            if e.get('state') is not None:
                state = parse_choice(e['state'], ('present', 'absent'))
        except ValueError as ex:
            errors.add(idx, source, 'state', str(ex))
        try:
            if e.get('active') is not None:
                active = parse_bool(e['active'])
        except ValueError as ex:
            errors.add(idx, source, 'active', str(ex))
        raw_d = e.get('destinations', e.get('destination'))
        try:
            if raw_d is not None:
                dests = parse_destinations(raw_d)
            if state == 'present' and not dests:
                raise ValueError('at least one destination is required')
        except ValueError as ex:
            errors.add(idx, source, 'destinations', str(ex))
        if source in seen:
            errors.add(idx, source, 'source', 'duplicate of entry %d' % seen[source])
            continue
        seen[source] = i
        entries.append((idx, source, domain, dests, active, state))
    return entries


def main():
    argument_spec = maildb_argument_spec()
    argument_spec.update(
        source=dict(type='str'),
        destinations=dict(type='list', elements='str', aliases=['destination']),
        active=dict(type='bool'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        aliases=dict(type='list', elements='dict'),
        report_items=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('source', 'aliases')],
                           required_one_of=[('source', 'aliases')])
    p = module.params
    inv = invocation(p, bulk_keys=('aliases',))
    errors = EntryErrors('aliases' if p['aliases'] is not None else None)
    entries = collect(module, errors)
    if errors:
        errors.fail(module, invocation=inv)

    report = Report(report_items=p['report_items'], want_diff=module._diff)
    single = None
    conn = connect(module)
    try:
        require_schema(module, conn, 1)
        cur = conn.cursor()
        sources = [e[1] for e in entries]
        existing = {}
        for src, dst, act in select_in(cur, 'SELECT source, destination, active FROM alias WHERE source', sources):
            existing.setdefault(src, {})[dst] = bool(act)
        domains = set(e[2] for e in entries if e[5] == 'present')
        known = set(r[0] for r in select_in(cur, 'SELECT name FROM domain WHERE name', sorted(domains)))
        inserts, act_updates, deletes = [], [], []
        for idx, source, domain, dests, active, state in entries:
            old = existing.get(source, {})
            before = dict(source=source, destinations=sorted(old), active=all(old.values())) if old else {}
            if state == 'absent':
                gone = [d for d in (dests if dests is not None else sorted(old)) if d in old]
                if gone:
                    deletes.extend((source, d) for d in gone)
                    left = sorted(set(old) - set(gone))
                    report.add('removed', source, before,
                               dict(source=source, destinations=left, active=before['active']) if left else {})
                    single = dict(source=source, destinations=left, active=before['active']) if left else None
                else:
                    report.add('unchanged', source)
                    single = before or None
                continue
            if domain not in known:
                errors.add(idx, source, 'source', 'domain %r is not present in the mail database '
                           '(add it with mail_domain first)' % domain)
                continue
            for d in dests:
                if d not in old:
                    inserts.append((source, d, domain, int(active if active is not None else True)))
                elif active is not None and old[d] != active:
                    act_updates.append((source, d, domain, int(active)))
            deletes.extend((source, d) for d in old if d not in dests)
            new_active = active if active is not None else (all(old[d] for d in dests if d in old)
                                                            if any(d in old for d in dests) else True)
            after = dict(source=source, destinations=sorted(dests), active=new_active)
            single = after
            if not old:
                report.add('created', source, {}, after)
            elif after != before or any(d in old and old[d] != new_active for d in dests):
                report.add('updated', source, before, after)
            else:
                report.add('unchanged', source)
        if errors:
            errors.fail(module, invocation=inv)
        if not module.check_mode and (inserts or act_updates or deletes):
            if deletes:
                for i in range(0, len(deletes), 500):
                    part = deletes[i:i + 500]
                    cur.execute('DELETE FROM alias WHERE (source, destination) IN (%s)'
                                % ', '.join(['(%s, %s)'] * len(part)), [x for pair in part for x in pair])
            executemany(cur, 'INSERT INTO alias (source, destination, domain, active) VALUES (%s, %s, %s, %s)',
                        inserts)
            executemany(cur, 'INSERT INTO alias (source, destination, domain, active) VALUES (%s, %s, %s, %s) '
                        'ON DUPLICATE KEY UPDATE active = VALUES(active)', act_updates)
            conn.commit()
    except pymysql.err.MySQLError as e:
        conn.rollback()
        module.fail_json(msg='Database error, nothing was changed: %s' % db_error_text(e), invocation=inv)
    finally:
        conn.close()

    result = report.result()
    if p['source'] is not None and single:
        result['alias'] = single
    module.exit_json(invocation=inv, **result)


if __name__ == '__main__':
    main()
