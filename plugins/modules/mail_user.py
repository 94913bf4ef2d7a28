#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: mail_user
short_description: Provision mail users (virtual mailboxes) in the Postfix/Dovecot mail database
version_added: 0.1.0
description:
  - Creates, changes or removes mailboxes in the C(mailbox) table that Postfix
    (C(virtual_mailbox_maps)) and Dovecot (passdb, userdb) read.
  - Passwords are hashed with passlib into a scheme Dovecot verifies, stored in Dovecot's
    C({SCHEME}hash) form, with the cost C(doveadm pw) uses by default.
  - One user (O(email)) or many (O(users) or O(csv)) per task. The bulk form validates every
    entry, reads the existing rows in a few queries, hashes only what has to be hashed on all
    the target's cores, and writes in batches within one transaction, so 100,000 users take
    one task (see C(docs/performance.md)).
  - Nothing is written when any entry is invalid; errors name the entry (index and address)
    and the field.
  - New mailboxes without an explicit O(mailbox_host) are placed by the O(placement) policy
    among the mailbox hosts (M(mailops.mailstack.mail_host)) whose state is C(active). When the
    C(mailbox_host) table is empty (topologies without shards) the column stays empty.
  - Why a module of our own - no existing module provisions a Postfix/Dovecot virtual-user
    schema (hashing in Dovecot's format, placement on shards, bulk provisioning);
    M(community.mysql.mysql_query) could run SQL but neither hash, validate, batch nor report.
options:
  email:
    description:
      - Address of the mailbox (lower-cased; an internationalized domain is stored in punycode).
      - Its domain must exist (M(mailops.mailstack.mail_domain)) and be of kind C(local).
      - Exactly one of O(email), O(users) and O(csv) is required.
    type: str
    aliases: [address]
  password:
    description:
      - Clear-text password, hashed with O(scheme). Never returned or logged.
      - Required (or O(password_hash)) to create a mailbox.
    type: str
  password_hash:
    description:
      - An existing hash in Dovecot's C({SCHEME}hash) form, stored as given (for example from
        C(doveadm pw) or another server). Mutually exclusive with O(password).
    type: str
  scheme:
    description:
      - Dovecot password scheme of new hashes.
      - V(ARGON2ID) needs the argon2-cffi Python package on the target.
    type: str
    choices: [SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, ARGON2ID]
    default: SHA512-CRYPT
  rounds:
    description:
      - Cost of new hashes - rounds for V(SHA512-CRYPT) and V(SHA256-CRYPT) (default 5000),
        log2 cost for V(BLF-CRYPT) (default 5), time cost for V(ARGON2ID) (default 3, with
        64 MiB and one lane). The defaults are those of C(doveadm pw) in Dovecot 2.3; passlib's
        own defaults are far slower.
    type: int
  update_password:
    description:
      - V(always) verifies the stored hash against O(password) and rewrites it when the password,
        the scheme or the cost differs. Verifying costs one hash computation per user, so for
        large lists V(always) is about as slow as creating them.
      - V(on_create) sets the password only when the mailbox is created; existing hashes are
        never read or recomputed, which makes re-runs of large lists fast.
      - With O(password_hash), V(always) rewrites the stored hash when it is a different string.
    type: str
    choices: [always, on_create]
    default: always
  quota:
    description:
      - Mailbox quota - bytes, or a size with a binary unit (C(500M), C(2G), C(1.5GiB)); V(0) is
        unlimited. When omitted, on creation the quota of the user's domain in O(domain_quotas) (else
        V(0)), and unchanged otherwise.
    type: raw
  domain_quotas:
    description:
      - The default quota of a new mailbox by its domain - a dict of domain to size, as O(quota) takes
        it. A mailbox created without a quota of its own (in its entry or O(quota)) gets its domain's;
        existing mailboxes keep theirs.
      - C(playbooks/provision_users.yml) passes the C(default_quota) of each domain of
        C(mailstack_domains).
    type: dict
    version_added: 0.3.0
  mailbox_host:
    description:
      - Mailbox host (shard) of the mailbox; it must exist, and to receive a new or moved mailbox
        its state must be C(active). When omitted, new mailboxes are placed by O(placement) and
        existing ones stay where they are.
      - Changing it only changes the database; moving the mail itself is a separate job.
    type: str
  placement:
    description:
      - How new mailboxes without O(mailbox_host) are placed among the C(active) mailbox hosts.
      - V(fewest_users) - the host with the fewest mailboxes, counting those placed in this run.
      - V(weighted) - fills hosts in proportion to their weight.
      - V(stable_hash) - weighted rendezvous hash of the address, the same address always lands
        on the same host; adding a host moves only its share.
    type: str
    choices: [fewest_users, weighted, stable_hash]
    default: fewest_users
  maildir:
    description:
      - Maildir path relative to the mail root. When omitted, C(<domain>/<local part>/) on
        creation and unchanged otherwise.
    type: str
  active:
    description:
      - Whether the mailbox receives mail and may log in. When omitted, V(true) on creation and
        unchanged otherwise.
    type: bool
  aliases:
    description:
      - Extra addresses delivering to this mailbox (rows of the C(alias) table with this mailbox
        as destination). They are added when missing; other aliases are left alone.
      - Their domains must exist. When the mailbox is removed, aliases pointing to it are removed.
    type: list
    elements: str
  state:
    description:
      - V(present) or V(absent). For O(users) and O(csv), the default of entries without their own
        C(state).
    type: str
    choices: [present, absent]
    default: present
  users:
    description:
      - Bulk form - a list of users applied in one task and one transaction. Each entry is a dict
        with the keys C(email) (required), C(password), C(password_hash), C(scheme), C(rounds),
        C(update_password), C(quota), C(mailbox_host), C(maildir), C(active), C(aliases) and
        C(state), meaning the same as the options of that name; options given at module level
        (O(scheme), O(rounds), O(update_password), O(quota), O(mailbox_host), O(active),
        O(state)) are the defaults of entries that leave them out.
      - Passwords in entries are never returned or logged. Set C(no_log) on the task too if the
        list comes from a variable that other tasks print.
    type: list
    elements: dict
  csv:
    description:
      - Bulk form from a CSV file on the target - the first row names the columns, C(email) and any
        of the keys of O(users); C(aliases) holds addresses separated by spaces or semicolons; an
        empty cell means the key is not given.
    type: path
  report_items:
    description:
      - Also return the addresses of created, updated, unchanged and removed mailboxes in
        RV(items).
    type: bool
    default: false
  hash_workers:
    description:
      - Processes that hash and verify passwords in the bulk form; V(0) uses every core available
        to the module.
    type: int
    default: 0
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mailops.mailstack.maildb
  - mailops.mailstack.maildb.mail_database
  - mailops.mailstack.maildb.attributes
attributes:
  check_mode:
    support: full
    details: Passwords are verified (for O(update_password=always)) but no new hash is computed.
  diff_mode:
    support: full
    details: Password hashes never appear in the diff, only C(password_changed). At most 1000 entries are shown.
requirements:
  - passlib
  - argon2-cffi, for the ARGON2ID scheme
notes:
  - Verify a stored hash with Dovecot itself - C(doveadm pw -t '{SHA512-CRYPT}$6$...' -p password).
seealso:
  - module: mailops.mailstack.mail_domain
  - module: mailops.mailstack.mail_alias
  - module: mailops.mailstack.mail_host
  - name: Dovecot password schemes
    description: The schemes and their C({SCHEME}) prefixes.
    link: https://doc.dovecot.org/2.3/configuration_manual/authentication/password_schemes/
author:
  - mailstack developers (@mailops)
'''

EXAMPLES = r'''
- name: One user
  mailops.mailstack.mail_user:
    email: alice@example.org
    password: "{{ vault_alice_password }}"
    quota: 2G
    aliases: [a.smith@example.org]
    login_unix_socket: /run/mysqld/mysqld.sock

- name: A user with a hash made elsewhere, on a given shard
  mailops.mailstack.mail_user:
    email: bob@example.org
    password_hash: "{SHA512-CRYPT}$6$W7bDqQFe0yD5hCko$0Ti5..."
    mailbox_host: store2
    login_unix_socket: /run/mysqld/mysqld.sock

- name: Many users in one task; passwords only set for new users
  mailops.mailstack.mail_user:
    users: "{{ mail_users }}"
    update_password: on_create
    placement: stable_hash
    quota: 1G
    login_unix_socket: /run/mysqld/mysqld.sock
  no_log: true

- name: 100,000 users from a CSV file (columns email,password,quota)
  mailops.mailstack.mail_user:
    csv: /srv/provisioning/users.csv
    update_password: on_create
    login_unix_socket: /run/mysqld/mysqld.sock

- name: Remove a user (and the aliases that point to it)
  mailops.mailstack.mail_user:
    email: carol@example.org
    state: absent
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
  description: Number of mailboxes created (or that would be, in check mode).
  returned: always
  type: int
  sample: 100000
updated:
  description: Number of mailboxes changed (password, quota, host, maildir, active or new aliases).
  returned: always
  type: int
  sample: 0
unchanged:
  description: Number of mailboxes already as requested.
  returned: always
  type: int
  sample: 0
removed:
  description: Number of mailboxes removed.
  returned: always
  type: int
  sample: 0
hashed:
  description: Number of password hashes computed.
  returned: always
  type: int
  sample: 100000
verified:
  description: Number of stored hashes verified against the given password.
  returned: always
  type: int
  sample: 0
items:
  description: Addresses by outcome.
  returned: when O(report_items=true)
  type: dict
  contains:
    created:
      description: Mailboxes created.
      type: list
      elements: str
    updated:
      description: Mailboxes changed.
      type: list
      elements: str
    unchanged:
      description: Mailboxes left as they were.
      type: list
      elements: str
    removed:
      description: Mailboxes removed.
      type: list
      elements: str
user:
  description: The mailbox after the run (single form; before it, when removed). No password or hash.
  returned: when O(email) is used and the mailbox exists before or after the run
  type: dict
  sample: {email: alice@example.org, domain: example.org, quota: 2147483648, mailbox_host: store1,
           maildir: example.org/alice/, active: true}
errors:
  description: Every validation error (up to 1000) when the input is rejected.
  returned: failure
  type: list
  elements: str
  sample: ["users[41] (bob@example.org): quota: '-1G' is negative; use 0 for unlimited"]
'''

import csv as csvmod
import re

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.mailops.mailstack.plugins.module_utils.bulk import STATES, BulkModule, entry_key
from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import (
    BATCH_SIZE, delete_in, executemany, select_in,
)
from ansible_collections.mailops.mailstack.plugins.module_utils import passwords
from ansible_collections.mailops.mailstack.plugins.module_utils.rows import (
    INSERT_ALIAS_SQL, AliasValues, HostPlacement, MailboxRow, MailboxValues, insert_sql, select_sql,
)
from ansible_collections.mailops.mailstack.plugins.module_utils.validation import (
    PlacementError, Placer, ACCEPTING_STATES, PLACEMENT_POLICIES, normalize_email,
    normalize_domain, parse_bool, parse_choice, parse_int, parse_quota, split_email,
)

ENTRY_KEYS = ('email', 'password', 'password_hash', 'scheme', 'rounds', 'update_password', 'quota',
              'mailbox_host', 'maildir', 'active', 'aliases', 'state')
# Module options that are the defaults of the bulk form's entries (and not part of the single form's entry).
ENTRY_DEFAULTS = ('scheme', 'rounds', 'update_password', 'quota', 'mailbox_host', 'active', 'state')
HASH_RE = re.compile(r'^\{[A-Z0-9][A-Z0-9._-]*\}\S+$', re.I)
# Existing rows are read per domain (one query) instead of per address batch above this.
READ_BY_DOMAIN_THRESHOLD = 2000

INSERT_SQL = insert_sql(MailboxValues, 'mailbox')
UPSERT_SQL = (INSERT_SQL + ' ON DUPLICATE KEY UPDATE password = VALUES(password), quota = VALUES(quota), '
              'mailbox_host = VALUES(mailbox_host), maildir = VALUES(maildir), active = VALUES(active)')


class MailboxEntry(object):
    """One validated entry; slots keep 100,000 of them small.

    ``action`` is what the plan does with it (create, update, unchanged, remove);
    ``needs_hash`` is set when the stored hash does not verify the given password.
    """
    __slots__ = ('index', 'email', 'local_part', 'domain', 'password', 'password_hash', 'scheme', 'cost',
                 'update_password', 'quota', 'mailbox_host', 'maildir', 'active', 'aliases', 'state', 'action',
                 'needs_hash')


def entry_value(entry, key):
    """entry[key], with an empty string (but an empty password) taken as not given."""
    value = entry.get(key)
    if isinstance(value, str) and value == '' and key != 'password':
        return None
    return value


def entries_from_params(module):
    """(list name, entries): ('users', ...), ('csv', ...), or (None, [the single form's entry])."""
    p = module.params
    if p['users'] is not None:
        return 'users', iter(p['users'])
    if p['csv'] is not None:
        return 'csv', csv_rows(module, p['csv'])
    single = dict((k, p[k]) for k in ENTRY_KEYS if k in p and k not in ENTRY_DEFAULTS)
    return None, iter([single])


def csv_rows(module, path):
    try:
        csv_file = open(path, newline='', encoding='utf-8')
    except (IOError, OSError) as exc:
        module.fail_json(msg='csv: cannot read %s: %s' % (path, exc))
    with csv_file:
        reader = csvmod.DictReader(csv_file)
        if not reader.fieldnames or 'email' not in [c.strip() for c in reader.fieldnames]:
            module.fail_json(msg='csv: %s: the first row must name the columns, including email' % path)
        strip = any(c != c.strip() for c in reader.fieldnames)
        for row in reader:
            if strip:
                row = dict((k.strip() if k else k, v) for k, v in row.items())
            yield csv_entry(row)


def csv_entry(row):
    """The entry of one CSV row: empty cells left out, aliases split."""
    entry = {}
    for column, value in row.items():
        if column is None:
            entry['(extra columns)'] = value
        elif value is not None and value != '':
            entry[column] = value if column == 'password' else value.strip()
    if 'aliases' in entry:
        entry['aliases'] = [a for a in re.split(r'[\s,;]+', entry.get('aliases', '')) if a]
    return entry


def parse_host_name(value):
    if not isinstance(value, str):
        raise ValueError('must be a string')
    return value


def check_maildir(value):
    if not isinstance(value, str):
        raise ValueError('must be a string')
    v = value.strip()
    if not v or len(v) > 512:
        raise ValueError('must be 1 to 512 characters')
    if v.startswith('/') or '\0' in v or '..' in v.split('/'):
        raise ValueError('%r must be relative to the mail root, without .. components' % value)
    return v


def mailbox_view(email, domain, quota, host, maildir, active):
    """A mailbox as results and the diff show it (never its password)."""
    return dict(email=email, domain=domain, quota=quota, mailbox_host=host, maildir=maildir, active=active)


def stored_view(entry, row):
    """mailbox_view of a MailboxRow."""
    return mailbox_view(entry.email, entry.domain, int(row.quota), row.mailbox_host, row.maildir, bool(row.active))


class MailUser(BulkModule):
    argument_spec = dict(
        email=dict(type='str', aliases=['address']),
        password=dict(type='str', no_log=True),
        password_hash=dict(type='str', no_log=True),
        scheme=dict(type='str', default='SHA512-CRYPT', choices=list(passwords.SCHEMES)),
        rounds=dict(type='int'),
        update_password=dict(type='str', default='always', choices=['always', 'on_create'], no_log=False),
        quota=dict(type='raw'),
        domain_quotas=dict(type='dict'),
        mailbox_host=dict(type='str'),
        placement=dict(type='str', default='fewest_users', choices=list(PLACEMENT_POLICIES)),
        maildir=dict(type='str'),
        active=dict(type='bool'),
        aliases=dict(type='list', elements='str'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        # no_log keeps the entries (and their passwords) out of the invocation log; prepare()
        # resets no_log_values so that addresses are not masked in results.
        users=dict(type='list', elements='dict', no_log=True),
        csv=dict(type='path'),
        report_items=dict(type='bool', default=False),
        hash_workers=dict(type='int', default=0),
    )
    module_options = dict(mutually_exclusive=[('email', 'users', 'csv'), ('password', 'password_hash')],
                          required_one_of=[('email', 'users', 'csv')])
    list_option = 'users'
    single_key = 'user'

    def prepare(self):
        p = self.params
        # Only real secrets stay in no_log_values: the leaves of `users` (addresses, quotas...) must
        # not be masked in results, and matching 100,000 values against the output would take hours.
        # Entry passwords never reach the output: no message or return value contains them.
        self.module.no_log_values = set(v for v in (p['login_password'], p['password'], p['password_hash']) if v)
        if not passwords.HAS_PASSLIB:
            self.module.fail_json(msg=missing_required_lib('passlib'), exception=passwords.PASSLIB_IMP_ERR)
        self.counters = dict(hashed=0, verified=0)

    def list_name(self):
        for name in ('users', 'csv'):
            if self.params[name] is not None:
                return name
        return None

    def entry_error(self, entry, field, message):
        self.errors.add(entry.index if self.bulk else None, entry.email, field, message)

    # --- validate: without the database ---

    def validate(self):
        """self.entries: one MailboxEntry per entry whose address is valid and new."""
        p = self.params
        list_name, raw_entries = entries_from_params(self.module)
        self.bulk = list_name is not None
        self.defaults = dict((name, p[name]) for name in ENTRY_DEFAULTS)
        self.default_quota = None
        if p['quota'] is not None:
            # the single form names the address; in the bulk form it is the module-level default
            self.default_quota = self.parse_value(None, p['email'], 'quota' if not self.bulk else
                                                  'quota (module option)', p['quota'], parse_quota)
        self.domain_quotas = self.validate_domain_quotas(p['domain_quotas'] or {})
        self.entries = []
        self.interned = {}
        seen = {}
        for position, entry in enumerate(raw_entries):
            checked = self.validate_entry(position, entry, seen)
            if checked is not None:
                self.entries.append(checked)
        if list_name == 'users':
            p['users'] = None  # drop the parsed list, the entries hold what is needed

    def validate_domain_quotas(self, domain_quotas):
        """{domain: bytes} of domain_quotas; a bad domain or size is an error naming the domain."""
        quotas = {}
        for domain, quota in domain_quotas.items():
            try:
                quotas[normalize_domain(domain)] = parse_quota(quota)
            except ValueError as exc:
                self.errors.add(None, 'domain_quotas', str(domain), str(exc))
        return quotas

    def validate_entry(self, position, entry, seen):
        index = position if self.bulk else None
        if not isinstance(entry, dict):
            self.errors.add(index, None, 'entry', 'must be a dict')
            return None
        key = entry_key(entry, 'email')
        if self.bulk:
            for field in entry:
                if field not in ENTRY_KEYS:
                    self.errors.add(index, key, field, 'unknown field (allowed: %s)' % ', '.join(ENTRY_KEYS))
        address = self.parse_required(index, key, 'email', entry_value(entry, 'email'), split_email)
        if address is None:
            return None
        checked = MailboxEntry()
        checked.index = position
        checked.email, checked.local_part, domain = address
        checked.domain = self.interned.setdefault(domain, domain)
        if self.is_duplicate(seen, index, checked.email, 'email', position):
            return None
        self.validate_options(checked, entry)
        self.validate_password(checked, entry)
        checked.aliases = self.validate_aliases(checked, entry)
        checked.action = None
        checked.needs_hash = False
        return checked

    def option(self, checked, entry, name, parse, *args):
        """An entry's option (bulk form only), or the module-level default."""
        value = entry_value(entry, name) if self.bulk else None
        index = checked.index if self.bulk else None
        return self.parse_value(index, checked.email, name, value, parse, self.defaults.get(name), *args)

    def validate_options(self, checked, entry):
        checked.state = self.option(checked, entry, 'state', parse_choice, STATES)
        checked.update_password = self.option(checked, entry, 'update_password', parse_choice, ('always', 'on_create'))
        checked.scheme = self.option(checked, entry, 'scheme', parse_choice, passwords.SCHEMES)
        rounds = self.option(checked, entry, 'rounds', parse_int)
        try:
            checked.cost = passwords.check_scheme(checked.scheme, rounds)
        except ValueError as exc:
            self.entry_error(checked, 'rounds' if rounds is not None and 'rounds' in str(exc) else 'scheme', str(exc))
            checked.cost = None
        quota = entry_value(entry, 'quota') if self.bulk else None
        if quota is None:
            checked.quota = self.default_quota
        else:
            checked.quota = self.parse_value(checked.index, checked.email, 'quota', quota, parse_quota)
        host = self.option(checked, entry, 'mailbox_host', parse_host_name)
        checked.mailbox_host = self.interned.setdefault(host, host) if host else None
        checked.active = self.option(checked, entry, 'active', parse_bool)
        index = checked.index if self.bulk else None
        checked.maildir = self.parse_value(index, checked.email, 'maildir', entry_value(entry, 'maildir'),
                                           check_maildir)

    def validate_password(self, checked, entry):
        password = entry.get('password')
        password_hash = entry_value(entry, 'password_hash')
        if isinstance(password, int) and not isinstance(password, bool):
            password = str(password)  # YAML reads an all-digit password as a number
        if password is not None and not isinstance(password, str):
            self.entry_error(checked, 'password', 'must be a string')
            password = None
        if password == '':
            self.entry_error(checked, 'password', 'must not be empty')
            password = None
        if password_hash is not None and (not isinstance(password_hash, str) or not HASH_RE.match(password_hash)):
            self.entry_error(checked, 'password_hash', 'must be in Dovecot\'s {SCHEME}hash form '
                             '(for example the output of doveadm pw)')
            password_hash = None
        if password is not None and password_hash is not None:
            self.entry_error(checked, 'password', 'give password or password_hash, not both')
        checked.password, checked.password_hash = password, password_hash

    def validate_aliases(self, checked, entry):
        """The entry's aliases, normalised, without repeats; None when there are none."""
        aliases = entry_value(entry, 'aliases')
        if aliases is None:
            return None
        if isinstance(aliases, str):
            aliases = [a for a in re.split(r'[\s,;]+', aliases) if a]
        if not isinstance(aliases, list):
            self.entry_error(checked, 'aliases', 'must be a list of addresses')
            return None
        normalized = []
        for alias in aliases:
            try:
                alias = normalize_email(alias)
            except ValueError as exc:
                self.entry_error(checked, 'aliases', str(exc))
                continue
            if alias == checked.email:
                self.entry_error(checked, 'aliases', '%s is the mailbox itself' % alias)
            elif alias not in normalized:
                normalized.append(alias)
        return normalized or None

    # --- read ---

    def read(self, cursor):
        domains = sorted(set(e.domain for e in self.entries if e.state == 'present'))
        self.domain_kinds = dict(select_in(cursor, 'SELECT name, kind FROM domain WHERE name', domains))
        cursor.execute('SELECT name, state, weight FROM mailbox_host')
        self.hosts = dict((name, HostPlacement(state, int(weight))) for name, state, weight in cursor.fetchall())
        self.existing = self.read_mailboxes(cursor)
        counts = {}
        if any(e.state == 'present' and e.mailbox_host is None and e.email not in self.existing
               for e in self.entries):
            cursor.execute('SELECT mailbox_host, COUNT(*) FROM mailbox WHERE mailbox_host IS NOT NULL '
                           'GROUP BY mailbox_host')
            counts = dict(cursor.fetchall())
        self.placer = Placer(self.hosts, counts, self.params['placement'])

    def read_mailboxes(self, cursor):
        """The existing MailboxRow of each address we were given, by address."""
        existing = {}
        if len(self.entries) > READ_BY_DOMAIN_THRESHOLD:
            wanted = set(e.email for e in self.entries)
            domains = sorted(set(e.domain for e in self.entries))
            for row in select_in(cursor, select_sql(MailboxRow, 'mailbox', 'domain'), domains):
                if row[0] in wanted:
                    existing[row[0]] = MailboxRow._make(row)
        else:
            for row in select_in(cursor, select_sql(MailboxRow, 'mailbox', 'email'), [e.email for e in self.entries]):
                existing[row[0]] = MailboxRow._make(row)
        return existing

    # --- plan (still validating: errors here also abort before any write) ---

    def plan(self, cursor):
        to_verify = []
        for entry in self.entries:
            old = self.existing.get(entry.email)
            if entry.state == 'absent':
                entry.action = 'remove' if old else 'unchanged'
                continue
            entry.action = self.plan_action(entry, old)
            if entry.action == 'update' and entry.update_password == 'always' and entry.password is not None:
                to_verify.append(entry)
        self.fail_on_errors()
        self.verify_passwords(to_verify)
        self.plan_rows()
        self.plan_aliases(cursor)

    def plan_action(self, entry, old):
        """'create', or 'update' (refined by plan_rows), for a present entry; None after an error."""
        if not self.check_domain(entry) or not self.check_host(entry, old):
            return None
        if old is not None:
            return 'update'
        if entry.password is None and entry.password_hash is None:
            self.entry_error(entry, 'password', 'password or password_hash is required to create a mailbox')
            return None
        if entry.mailbox_host is None:
            try:
                entry.mailbox_host = self.placer.place(entry.email)
            except PlacementError as exc:
                self.entry_error(entry, 'mailbox_host', str(exc))
                return None
        return 'create'

    def check_domain(self, entry):
        if entry.domain not in self.domain_kinds:
            self.entry_error(entry, 'email', 'domain %r is not present in the mail database '
                             '(add it with mail_domain first)' % entry.domain)
            return False
        kind = self.domain_kinds[entry.domain]
        if kind != 'local':
            self.entry_error(entry, 'email', 'domain %r is of kind %s; mailboxes need a local domain'
                             % (entry.domain, kind))
            return False
        return True

    def check_host(self, entry, old):
        host = entry.mailbox_host
        if host is None:
            return True
        if host not in self.hosts:
            self.entry_error(entry, 'mailbox_host', 'unknown mailbox host %r (add it with mail_host first)' % host)
            return False
        state = self.hosts[host].state
        if (old is None or old.mailbox_host != host) and state not in ACCEPTING_STATES:
            self.entry_error(entry, 'mailbox_host', 'mailbox host %r does not accept new users (state %s)'
                             % (host, state))
            return False
        return True

    def verify_passwords(self, to_verify):
        """Verify stored hashes (update_password=always); those that do not verify need a new hash."""
        if not to_verify:
            return
        jobs = ((e.password, self.existing[e.email].password, e.scheme, e.cost) for e in to_verify)
        for entry, verified in zip(to_verify, passwords.verify_many(jobs, len(to_verify), self.params['hash_workers'])):
            if not verified:
                entry.needs_hash = True
        self.counters['verified'] = len(to_verify)

    def plan_rows(self):
        """Decide created / updated / unchanged / removed and the values to write."""
        self.removals = []
        self.creations, self.creations_to_hash = [], []
        self.updates, self.updates_to_hash = [], []
        self.alias_owners = []
        self.single = None
        for entry in self.entries:
            if entry.action == 'unchanged':
                self.report.add('unchanged', entry.email)
                continue
            old = self.existing.get(entry.email)
            if entry.action == 'remove':
                self.plan_removal(entry, old)
                continue
            after = self.plan_creation(entry) if entry.action == 'create' else self.plan_update(entry, old)
            if not self.bulk:
                self.single = dict(after)
                self.single.pop('password_changed', None)
            if entry.aliases:
                self.alias_owners.append(entry)

    def plan_removal(self, entry, old):
        self.removals.append(entry.email)
        self.report.add('removed', entry.email, stored_view(entry, old), {})
        if not self.bulk:
            self.single = stored_view(entry, old)

    def plan_creation(self, entry):
        quota = entry.quota if entry.quota is not None else self.domain_quotas.get(entry.domain, 0)
        values = MailboxValues(entry.email, entry.local_part, entry.domain, None, quota, entry.mailbox_host,
                               entry.maildir or '%s/%s/' % (entry.domain, entry.local_part),
                               int(entry.active if entry.active is not None else True))
        after = mailbox_view(entry.email, entry.domain, values.quota, values.mailbox_host, values.maildir,
                             bool(values.active))
        if self.report.want_diff:
            after['password_changed'] = True
        self.report.add('created', entry.email, {}, after)
        if entry.password_hash is not None:
            self.creations.append(values._replace(password=entry.password_hash))
        else:
            self.creations_to_hash.append((entry, values))
        return after

    def plan_update(self, entry, old):
        before = stored_view(entry, old)
        after = mailbox_view(entry.email, entry.domain,
                             entry.quota if entry.quota is not None else before['quota'],
                             entry.mailbox_host if entry.mailbox_host is not None else before['mailbox_host'],
                             entry.maildir if entry.maildir is not None else before['maildir'],
                             entry.active if entry.active is not None else before['active'])
        password_changed = entry.needs_hash or (entry.update_password == 'always' and entry.password_hash is not None
                                                and entry.password_hash != old.password)
        if not password_changed and after == before:
            entry.action = 'unchanged'
            self.report.add('unchanged', entry.email)
            return after
        values = MailboxValues(entry.email, entry.local_part, entry.domain, old.password, after['quota'],
                               after['mailbox_host'], after['maildir'], int(after['active']))
        if self.report.want_diff and password_changed:
            after['password_changed'] = True
        self.report.add('updated', entry.email, before, after)
        if entry.needs_hash:
            self.updates_to_hash.append((entry, values))
        else:
            self.updates.append(values._replace(password=entry.password_hash) if password_changed else values)
        return after

    def plan_aliases(self, cursor):
        """The users' aliases: check their domains, find the rows that are missing."""
        self.new_aliases = []
        wanted = [(alias, entry) for entry in self.alias_owners for alias in entry.aliases]
        if not wanted:
            return
        alias_domains = sorted(set(alias.split('@', 1)[1] for alias, entry in wanted))
        known = set(row[0] for row in select_in(cursor, 'SELECT name FROM domain WHERE name', alias_domains))
        existing = set(select_in(cursor, 'SELECT source, destination FROM alias WHERE source',
                                 sorted(set(alias for alias, entry in wanted))))
        for alias, entry in wanted:
            domain = alias.split('@', 1)[1]
            if domain not in known:
                self.entry_error(entry, 'aliases', 'domain %r of alias %s is not present in the mail database'
                                 % (domain, alias))
            elif (alias, entry.email) not in existing:
                self.new_aliases.append(AliasValues(alias, entry.email, domain, 1))
                if entry.action == 'unchanged':
                    # the mailbox itself is as requested, but an alias is added
                    entry.action = 'update'
                    self.reclassify_unchanged_as_updated(entry.email)

    # --- write ---

    def write(self, cursor):
        if self.removals:
            delete_in(cursor, 'DELETE FROM alias WHERE destination', self.removals)
            delete_in(cursor, 'DELETE FROM mailbox WHERE email', self.removals)
        executemany(cursor, INSERT_SQL, self.creations)
        executemany(cursor, UPSERT_SQL, self.updates)
        self.write_hashed(cursor)
        executemany(cursor, INSERT_ALIAS_SQL, self.new_aliases)

    def write_hashed(self, cursor):
        """Hash on all cores; write each batch as soon as it is hashed."""
        pending = self.creations_to_hash + self.updates_to_hash
        if not pending:
            return
        creations = len(self.creations_to_hash)
        jobs = ((entry.password, entry.scheme, entry.cost) for entry, values in pending)
        batches = {INSERT_SQL: [], UPSERT_SQL: []}
        hashes = passwords.hash_many(jobs, len(pending), self.params['hash_workers'])
        for position, password_hash in enumerate(hashes):
            entry, values = pending[position]
            # The hash replaces the password: a retried transaction
            # (bulk.py) writes it without hashing again.
            entry.password, entry.password_hash = None, password_hash
            sql = INSERT_SQL if position < creations else UPSERT_SQL
            batches[sql].append(values._replace(password=password_hash))
            if len(batches[sql]) >= BATCH_SIZE:
                cursor.executemany(sql, batches[sql])
                batches[sql] = []
        executemany(cursor, INSERT_SQL, batches[INSERT_SQL])
        executemany(cursor, UPSERT_SQL, batches[UPSERT_SQL])
        self.counters['hashed'] = len(pending)

    def before_retry(self):
        """The stored hashes are read again: a password verified against the
        row of the rolled-back read is verified again."""
        for entry in self.entries:
            entry.needs_hash = False
        self.counters['verified'] = 0

    def result(self):
        result = BulkModule.result(self)
        result.update(self.counters)
        return result


def main():
    MailUser().run()


if __name__ == '__main__':
    main()
