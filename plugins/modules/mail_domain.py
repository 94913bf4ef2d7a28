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
  - mailops.mailstack.maildb.mail_database
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
retries:
  description:
    - Times the transaction ran again after MariaDB ended it with 1213 (a Galera certification conflict, another
      node having changed the same rows first, or a deadlock), from its reads; at most 3, after which the module
      fails with the error.
  returned: always
  type: int
  sample: 0
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

from ansible_collections.mailops.mailstack.plugins.module_utils.bulk import STATES, BulkModule, entry_key
from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import delete_in, executemany, select_in
from ansible_collections.mailops.mailstack.plugins.module_utils.rows import (
    DomainEntry, DomainRow, DomainValues, insert_sql, select_sql,
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
    host, rest, bracketed = _split_next_hop(value)
    port = _next_hop_port(value, rest)
    host = _next_hop_host(value, host, rest, bracketed)
    out = ('[%s]' % host if bracketed else host) + (':%d' % port if port is not None else '')
    if len(out) > RELAY_HOST_MAX:
        raise ValueError('%r is longer than %d characters' % (value, RELAY_HOST_MAX))
    return out


def _split_next_hop(value):
    """(host, the rest after it, whether the host is in brackets)."""
    if value.startswith('['):
        end = value.find(']')
        if end < 0:
            raise ValueError('%r has no closing bracket' % value)
        host, rest = value[1:end], value[end + 1:]
        if not host:
            raise ValueError('%r has nothing between the brackets' % value)
        return host, rest, True
    if '[' in value or ']' in value:
        raise ValueError('%r: brackets must enclose the host name or address, at the start (%s)'
                         % (value, _RELAY_HOST_EXAMPLES))
    if value.count(':') > 1:
        raise ValueError('%r looks like an IPv6 address: an IPv6 address must be in brackets, '
                         'for example [2001:db8::7]:25' % value)
    host, colon, tail = value.partition(':')
    if not host:
        raise ValueError('%r has no host name' % value)
    return host, colon + tail, False


def _next_hop_port(value, rest):
    """The port of ':port' (None when rest is empty)."""
    if not rest:
        return None
    if not re.match(r'^:[0-9]+$', rest):
        raise ValueError('%r: expected an optional :port after the host, got %r' % (value, rest))
    port = int(rest[1:])
    if not 1 <= port <= 65535:
        raise ValueError('%r has port %s, outside 1-65535' % (value, rest[1:]))
    return port


def _next_hop_host(value, host, rest, bracketed):
    """The host normalised: an IP address compressed, a host name lower-cased and checked."""
    address = _ip_address(host)
    if address is not None:
        if not bracketed:
            raise ValueError('%r: an IP address must be in brackets, for example [%s]%s'
                             % (value, address, rest))
        return str(address)
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
    return host


class MailDomain(BulkModule):
    argument_spec = dict(
        name=dict(type='str', aliases=['domain']),
        kind=dict(type='str', choices=['local', 'relay']),
        relay_host=dict(type='str'),
        active=dict(type='bool'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        domains=dict(type='list', elements='raw'),
        report_items=dict(type='bool', default=False),
    )
    module_options = dict(mutually_exclusive=[('name', 'domains')], required_one_of=[('name', 'domains')])
    list_option = 'domains'
    schema_version = 2
    single_key = 'domain'

    def validate(self):
        """self.entries: one DomainEntry per valid entry."""
        p = self.params
        if p['domains'] is None:
            raw = [dict(name=p['name'], kind=p['kind'], relay_host=p['relay_host'], active=p['active'],
                        state=p['state'])]
        else:
            raw = p['domains']
        self.entries = []
        seen = {}
        for position, entry in enumerate(raw):
            index = None if p['domains'] is None else position
            checked = self.validate_entry(index, entry)
            if checked and not self.is_duplicate(seen, index, checked.name, 'name', position):
                self.entries.append(checked)

    def validate_entry(self, index, entry):
        """A DomainEntry, or None when the name is missing or invalid."""
        if isinstance(entry, str):
            entry = dict(name=entry)
        if not isinstance(entry, dict):
            self.errors.add(index, None, 'entry', 'must be a dict or a domain name')
            return None
        key = entry_key(entry, 'name')
        for field in sorted(set(entry) - set(ENTRY_KEYS)):
            self.errors.add(index, key, field, 'unknown field (allowed: %s)' % ', '.join(ENTRY_KEYS))
        name = self.parse_required(index, key, 'name', entry.get('name'), normalize_domain)
        if name is None:
            return None
        kind = self.parse_value(index, name, 'kind', entry.get('kind'), parse_choice, None, ('local', 'relay'))
        relay_host = self.validate_relay_host(index, name, entry.get('relay_host'), kind)
        active = self.parse_value(index, name, 'active', entry.get('active'), parse_bool)
        state = self.parse_value(index, name, 'state', entry.get('state'), parse_choice, self.params['state'], STATES)
        return DomainEntry(index, name, kind, relay_host, active, state)

    def validate_relay_host(self, index, name, value, kind):
        if value is None or value == '':
            return None
        try:
            relay_host = parse_relay_host(value)
            if kind == 'local':
                raise ValueError('only applies to kind relay, not kind local (drop it, or set kind: relay)')
            return relay_host
        except ValueError as exc:
            self.errors.add(index, name, 'relay_host', str(exc))
            return None

    def read(self, cursor):
        names = [entry.name for entry in self.entries]
        self.existing = dict((row.name, row) for row in map(
            DomainRow._make, select_in(cursor, select_sql(DomainRow, 'domain', 'name'), names)))
        removals = [entry.name for entry in self.entries if entry.state == 'absent' and entry.name in self.existing]
        self.used = {}
        if removals:
            for table in ('mailbox', 'alias'):
                for domain, count in select_in(cursor, 'SELECT domain, COUNT(*) FROM %s WHERE domain' % table,
                                               removals, ' GROUP BY domain'):
                    self.used.setdefault(domain, []).append('%d %s row(s)' % (count, table))

    def plan(self, cursor):
        self.inserts, self.updates, self.deletes = [], [], []
        self.single = None
        for entry in self.entries:
            old = self.existing.get(entry.name)
            before = self.view(old) if old else None
            self.single = before
            if entry.state == 'absent':
                self.plan_removal(entry, old, before)
            else:
                self.plan_presence(entry, old, before)

    @staticmethod
    def view(row):
        return dict(name=row.name, kind=row.kind, relay_host=row.relay_host, active=bool(row.active))

    def plan_removal(self, entry, old, before):
        if old is None:
            self.report.add('unchanged', entry.name)
        elif entry.name in self.used:
            self.errors.add(entry.index, entry.name, 'state', 'cannot remove a domain that still has %s; '
                            'remove them first' % ' and '.join(self.used[entry.name]))
        else:
            self.deletes.append(entry.name)
            self.report.add('removed', entry.name, before, {})

    def plan_presence(self, entry, old, before):
        kind = entry.kind or (old.kind if old else 'local')
        relay_host = self.relay_host_after(entry, old, kind)
        if relay_host is False:
            return
        after = dict(name=entry.name, kind=kind, relay_host=relay_host,
                     active=entry.active if entry.active is not None else (bool(old.active) if old else True))
        self.single = after
        values = DomainValues(entry.name, after['kind'], after['relay_host'], int(after['active']))
        if old is None:
            self.inserts.append(values)
            self.report.add('created', entry.name, {}, after)
        elif after != before:
            self.updates.append(values)
            self.report.add('updated', entry.name, before, after)
        else:
            self.report.add('unchanged', entry.name)

    def relay_host_after(self, entry, old, kind):
        """The domain's next hop after the run; False after an error."""
        was_relay = bool(old and old.kind == 'relay')
        if kind != 'relay':
            if entry.relay_host is not None:
                self.errors.add(entry.index, entry.name, 'relay_host', 'only applies to kind relay; the domain is '
                                'of kind local (drop it, or set kind: relay)')
                return False
            return None
        # A relay domain keeps its next hop unless a new one is given.
        relay_host = entry.relay_host or (old.relay_host if was_relay else None)
        if relay_host:
            return relay_host
        if was_relay:
            self.errors.add(entry.index, entry.name, 'relay_host', 'is required: the domain is of kind relay and '
                            'has no relay_host in the mail database (the next hop its mail is forwarded to, %s)'
                            % _RELAY_HOST_EXAMPLES)
        else:
            self.errors.add(entry.index, entry.name, 'relay_host', 'is required for kind relay (the next hop the '
                            "domain's mail is forwarded to, %s)" % _RELAY_HOST_EXAMPLES)
        return False

    def write(self, cursor):
        insert = insert_sql(DomainValues, 'domain')
        executemany(cursor, insert, self.inserts)
        executemany(cursor, insert + ' ON DUPLICATE KEY UPDATE kind = VALUES(kind), relay_host = VALUES(relay_host), '
                    'active = VALUES(active)', self.updates)
        delete_in(cursor, 'DELETE FROM domain WHERE name', self.deletes)


def main():
    MailDomain().run()


if __name__ == '__main__':
    main()
