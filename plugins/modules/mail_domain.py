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
    (C(virtual_mailbox_domains), C(relay_domains), C(transport_maps)) and Dovecot read.
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
      - V(local) - mail for the domain is delivered to mailboxes here. A backup MX relays
        these domains to the primary.
      - V(relay) - the domain's mail is accepted here and forwarded to O(relay_host), another
        mail server, for the recipients it confirms. It needs O(relay_host).
      - When omitted, V(local) on creation and unchanged otherwise.
      - Changing a domain from V(relay) to V(local) clears its relay host.
    type: str
    choices: [local, relay]
  relay_host:
    description:
      - For O(kind=relay), the next hop the domain's mail is forwarded to, in Postfix next-hop
        syntax - V([192.0.2.7]:25), V([2001:db8::7]:25), V([relay.example.net]) (no MX lookup)
        or V(relay.example.net:2525) (MX lookup); the port is optional (1-65535).
      - An IP address (IPv6 included) must be in brackets. No whitespace, commas or other
        characters; a host name is stored lower-cased.
      - Postfix on the mail server accepts the domain's mail for the recipients this next hop
        confirms (Postfix recipient address verification) and forwards it there.
      - Required when a domain of kind V(relay) is created, or when an existing one has none;
        when omitted otherwise, unchanged. Not allowed for a domain of kind V(local).
        An empty string is the same as omitting it.
    type: str
    version_added: 0.1.0
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
        keys C(name) (required), C(kind), C(relay_host), C(active) and C(state), meaning the same
        as the options of that name; a plain string is taken as C(name).
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

- name: A domain this mail server accepts and forwards to another mail server
  mailops.mailstack.mail_domain:
    name: example.net
    kind: relay
    relay_host: "[192.0.2.7]:25"
    login_host: db.example.org
    login_user: mailadmin
    login_password: "{{ vault_mailadmin_password }}"

- name: Many domains in one task
  mailops.mailstack.mail_domain:
    domains:
      - example.com
      - {name: old.example.com, active: false}
      - {name: partner.example.com, kind: relay, relay_host: "[mx.partner.example.com]"}
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
  sample: {name: example.net, kind: relay, relay_host: "[192.0.2.7]:25", active: true}
  contains:
    name:
      description: The domain.
      type: str
    kind:
      description: V(local) or V(relay).
      type: str
    relay_host:
      description: The next hop of a relay domain; V(null) for a local domain.
      type: str
      version_added: 0.1.0
    active:
      description: Whether the domain is in service.
      type: bool
errors:
  description: Every validation error (up to 1000) when the input is rejected.
  returned: failure
  type: list
  elements: str
'''

import ipaddress
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import (
    EntryErrors, Report, connect, db_error_text, delete_in, executemany, invocation,
    maildb_argument_spec, pymysql, require_schema, select_in,
)
from ansible_collections.mailops.mailstack.plugins.module_utils.validation import (
    normalize_domain, parse_bool, parse_choice,
)

ENTRY_KEYS = ('name', 'kind', 'relay_host', 'active', 'state')

# The domain.relay_host column.
RELAY_HOST_MAX = 255
_HOST_LABEL_RE = re.compile(r'^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$')
_RELAY_HOST_CHARS_RE = re.compile(r'^[A-Za-z0-9.:\[\]-]*$')
_RELAY_HOST_EXAMPLES = 'for example [192.0.2.7]:25, [2001:db8::7]:25, [relay.example.net] or relay.example.net:2525'


def _ip_address(text):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_relay_host(value):
    """A Postfix next hop, normalised; raises ValueError naming the problem (not the entry).

    ``[address-or-name]`` or ``name``, either optionally followed by ``:port``
    (1-65535). An IP address must be in brackets; IPv6 addresses are stored in
    their compressed form, host names in lower case.
    """
    if not isinstance(value, str):
        raise ValueError('must be a string, got %s' % type(value).__name__)
    if re.search(r'\s', value):
        raise ValueError('%r contains whitespace' % value)
    if ',' in value:
        raise ValueError('%r contains a comma: give exactly one next hop (%s)' % (value, _RELAY_HOST_EXAMPLES))
    if not _RELAY_HOST_CHARS_RE.match(value):
        bad = sorted(set(c for c in value if not _RELAY_HOST_CHARS_RE.match(c)))
        raise ValueError('%r contains %s: a next hop has only letters, digits, ".", "-", ":" and brackets (%s)'
                         % (value, ', '.join(repr(c) for c in bad), _RELAY_HOST_EXAMPLES))
    if value.startswith('['):
        end = value.find(']')
        if end < 0:
            raise ValueError('%r has no closing bracket' % value)
        host, rest, bracketed = value[1:end], value[end + 1:], True
        if not host:
            raise ValueError('%r has nothing between the brackets' % value)
    else:
        if '[' in value or ']' in value:
            raise ValueError('%r: brackets must enclose the host name or address, at the start (%s)'
                             % (value, _RELAY_HOST_EXAMPLES))
        if value.count(':') > 1:
            raise ValueError('%r looks like an IPv6 address: an IPv6 address must be in brackets, '
                             'for example [2001:db8::7]:25' % value)
        host, colon, tail = value.partition(':')
        rest, bracketed = colon + tail, False
        if not host:
            raise ValueError('%r has no host name' % value)
    port = None
    if rest:
        if not re.match(r'^:[0-9]+$', rest):
            raise ValueError('%r: expected an optional :port after the host, got %r' % (value, rest))
        port = int(rest[1:])
        if not 1 <= port <= 65535:
            raise ValueError('%r has port %s, outside 1-65535' % (value, rest[1:]))
    address = _ip_address(host)
    if address is not None:
        if not bracketed:
            raise ValueError('%r: an IP address must be in brackets, for example [%s]%s'
                             % (value, address, rest))
        host = str(address)
    else:
        if ':' in host:
            raise ValueError('%r: %r is not a valid IPv6 address' % (value, host))
        host = host.lower()
        labels = host.split('.')
        if len(host) > 253:
            raise ValueError('%r: the host name is longer than 253 characters' % value)
        for label in labels:
            if not _HOST_LABEL_RE.match(label):
                raise ValueError('%r: %r is not a valid host name (bad label %r)' % (value, host, label))
        if labels[-1].isdigit():
            raise ValueError('%r: %r is neither an IP address nor a host name (numeric top-level label)'
                             % (value, host))
    out = ('[%s]' % host if bracketed else host) + (':%d' % port if port is not None else '')
    if len(out) > RELAY_HOST_MAX:
        raise ValueError('%r is longer than %d characters' % (value, RELAY_HOST_MAX))
    return out


def collect(module, errors):
    """Validated entries: list of (index, name, kind, relay_host, active, state)."""
    p = module.params
    if p['domains'] is None:
        raw = [dict(name=p['name'], kind=p['kind'], relay_host=p['relay_host'], active=p['active'],
                    state=p['state'])]
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
        kind = active = relay_host = None
        state = p['state']
        try:
            if e.get('kind') is not None:
                kind = parse_choice(e['kind'], ('local', 'relay'))
        except ValueError as ex:
            errors.add(idx, name, 'kind', str(ex))
        try:
            if e.get('relay_host') is not None and e['relay_host'] != '':
                relay_host = parse_relay_host(e['relay_host'])
                if kind == 'local':
                    raise ValueError('only applies to kind relay, not kind local (drop it, or set kind: relay)')
        except ValueError as ex:
            errors.add(idx, name, 'relay_host', str(ex))
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
        entries.append((idx, name, kind, relay_host, active, state))
    return entries


def main():
    argument_spec = maildb_argument_spec()
    argument_spec.update(
        name=dict(type='str', aliases=['domain']),
        kind=dict(type='str', choices=['local', 'relay']),
        relay_host=dict(type='str'),
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
        require_schema(module, conn, 2)
        cur = conn.cursor()
        names = [e[1] for e in entries]
        existing = dict((r[0], (r[1], bool(r[2]), r[3])) for r in
                        select_in(cur, 'SELECT name, kind, active, relay_host FROM domain WHERE name', names))
        absent = [e[1] for e in entries if e[5] == 'absent' and e[1] in existing]
        used = {}
        if absent:
            for table in ('mailbox', 'alias'):
                for dom, n in select_in(cur, 'SELECT domain, COUNT(*) FROM %s WHERE domain' % table, absent,
                                        ' GROUP BY domain'):
                    used.setdefault(dom, []).append('%d %s row(s)' % (n, table))
        inserts, updates, deletes = [], [], []
        single = None
        for idx, name, kind, relay_host, active, state in entries:
            old = existing.get(name)
            before = dict(name=name, kind=old[0], relay_host=old[2], active=old[1]) if old else None
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
            new_kind = kind or (old[0] if old else 'local')
            if new_kind == 'relay':
                # A relay domain keeps its next hop unless a new one is given.
                new_relay_host = relay_host or (old[2] if old and old[0] == 'relay' else None)
                if not new_relay_host:
                    if old and old[0] == 'relay':
                        errors.add(idx, name, 'relay_host', 'is required: the domain is of kind relay and has no '
                                   'relay_host in the mail database (the next hop its mail is forwarded to, %s)'
                                   % _RELAY_HOST_EXAMPLES)
                    else:
                        errors.add(idx, name, 'relay_host', 'is required for kind relay (the next hop the '
                                   "domain's mail is forwarded to, %s)" % _RELAY_HOST_EXAMPLES)
                    continue
            else:
                if relay_host is not None:
                    errors.add(idx, name, 'relay_host', 'only applies to kind relay; the domain is of kind local '
                               '(drop it, or set kind: relay)')
                    continue
                new_relay_host = None
            after = dict(name=name, kind=new_kind, relay_host=new_relay_host,
                         active=active if active is not None else (old[1] if old else True))
            single = after
            if old is None:
                inserts.append((name, after['kind'], after['relay_host'], int(after['active'])))
                report.add('created', name, {}, after)
            elif after != before:
                updates.append((name, after['kind'], after['relay_host'], int(after['active'])))
                report.add('updated', name, before, after)
            else:
                report.add('unchanged', name)
        if errors:
            errors.fail(module, invocation=inv)
        if not module.check_mode and (inserts or updates or deletes):
            executemany(cur, 'INSERT INTO domain (name, kind, relay_host, active) VALUES (%s, %s, %s, %s)', inserts)
            executemany(cur, 'INSERT INTO domain (name, kind, relay_host, active) VALUES (%s, %s, %s, %s) '
                        'ON DUPLICATE KEY UPDATE kind = VALUES(kind), relay_host = VALUES(relay_host), '
                        'active = VALUES(active)', updates)
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
