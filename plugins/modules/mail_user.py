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
        unlimited. When omitted, V(0) on creation and unchanged otherwise.
    type: raw
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

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import (
    BATCH_SIZE, EntryErrors, Report, connect, db_error_text, delete_in, executemany,
    invocation, maildb_argument_spec, pymysql, require_schema, select_in,
)
from ansible_collections.mailops.mailstack.plugins.module_utils import passwords
from ansible_collections.mailops.mailstack.plugins.module_utils.validation import (
    PlacementError, Placer, ACCEPTING_STATES, PLACEMENT_POLICIES, normalize_email,
    parse_bool, parse_choice, parse_int, parse_quota, split_email,
)

ENTRY_KEYS = ('email', 'password', 'password_hash', 'scheme', 'rounds', 'update_password', 'quota',
              'mailbox_host', 'maildir', 'active', 'aliases', 'state')
HASH_RE = re.compile(r'^\{[A-Z0-9][A-Z0-9._-]*\}\S+$', re.I)
# Existing rows are read per domain (one query) instead of per address batch above this.
READ_BY_DOMAIN_THRESHOLD = 2000

INSERT_SQL = ('INSERT INTO mailbox (email, local_part, domain, password, quota, mailbox_host, maildir, active) '
              'VALUES (%s, %s, %s, %s, %s, %s, %s, %s)')
UPSERT_SQL = (INSERT_SQL + ' ON DUPLICATE KEY UPDATE password = VALUES(password), quota = VALUES(quota), '
              'mailbox_host = VALUES(mailbox_host), maildir = VALUES(maildir), active = VALUES(active)')


class Rec(object):
    """One validated entry; slots keep 100,000 of them small."""
    __slots__ = ('idx', 'email', 'local', 'domain', 'password', 'phash', 'scheme', 'cost', 'upd', 'quota',
                 'host', 'maildir', 'active', 'aliases', 'state', 'action', 'new_hash')


def _get(e, key):
    v = e.get(key)
    if isinstance(v, str) and v == '' and key != 'password':
        return None
    return v


def entries_from_params(module):
    p = module.params
    if p['users'] is not None:
        return 'users', iter(p['users'])
    if p['csv'] is not None:
        return 'csv', csv_rows(module, p['csv'])
    single = dict((k, p[k]) for k in ENTRY_KEYS if k in p and k not in ('scheme', 'rounds', 'update_password',
                                                                        'quota', 'mailbox_host', 'active', 'state'))
    return None, iter([single])


def csv_rows(module, path):
    try:
        f = open(path, newline='', encoding='utf-8')
    except (IOError, OSError) as e:
        module.fail_json(msg='csv: cannot read %s: %s' % (path, e))
    with f:
        reader = csvmod.DictReader(f)
        if not reader.fieldnames or 'email' not in [c.strip() for c in reader.fieldnames]:
            module.fail_json(msg='csv: %s: the first row must name the columns, including email' % path)
        strip = any(c != c.strip() for c in reader.fieldnames)
        for row in reader:
            if strip:
                row = dict((k.strip() if k else k, v) for k, v in row.items())
            out = {}
            for k, v in row.items():
                if k is None:
                    out['(extra columns)'] = v
                elif v is not None and v != '':
                    out[k] = v if k == 'password' else v.strip()
            if 'aliases' in out:
                out['aliases'] = [a for a in re.split(r'[\s,;]+', out.get('aliases', '')) if a]
            yield out


def collect(module, errors, list_name, raw_entries):
    """Validate entries without the database. Returns (records, domains, alias pairs)."""
    p = module.params
    defaults = dict(scheme=p['scheme'], rounds=p['rounds'], update_password=p['update_password'],
                    quota=p['quota'], mailbox_host=p['mailbox_host'], active=p['active'], state=p['state'])
    default_quota = None
    if p['quota'] is not None:
        try:
            default_quota = parse_quota(p['quota'])
        except ValueError as e:
            # the single form names the address; in the bulk form it is the module-level default
            errors.add(None, p['email'], 'quota' if list_name is None else 'quota (module option)', str(e))
    recs = []
    seen = {}
    interned = {}
    bulk = list_name is not None
    for i, e in enumerate(raw_entries):
        idx = i if bulk else None
        if not isinstance(e, dict):
            errors.add(idx, None, 'entry', 'must be a dict')
            continue
        key = e.get('email') if isinstance(e.get('email'), str) else None
        if bulk:
            for k in e:
                if k not in ENTRY_KEYS:
                    errors.add(idx, key, k, 'unknown field (allowed: %s)' % ', '.join(ENTRY_KEYS))
        r = Rec()
        r.idx = i
        try:
            if _get(e, 'email') is None:
                raise ValueError('is required')
            r.email, r.local, dom = split_email(e['email'])
        except ValueError as ex:
            errors.add(idx, key, 'email', str(ex))
            continue
        r.domain = interned.setdefault(dom, dom)
        em = r.email
        prev = seen.get(em)
        if prev is not None:
            errors.add(idx, em, 'email', 'duplicate of entry %d' % prev)
            continue
        seen[em] = i

        def opt(name, parse, *args):
            v = _get(e, name) if bulk else None
            if v is None:
                return defaults.get(name)
            try:
                return parse(v, *args)
            except ValueError as ex:
                errors.add(idx, em, name, str(ex))
                return defaults.get(name)

        r.state = opt('state', parse_choice, ('present', 'absent'))
        r.upd = opt('update_password', parse_choice, ('always', 'on_create'))
        r.scheme = opt('scheme', parse_choice, passwords.SCHEMES)
        rounds = opt('rounds', parse_int)
        try:
            r.cost = passwords.check_scheme(r.scheme, rounds)
        except ValueError as ex:
            errors.add(idx, em, 'rounds' if rounds is not None and 'rounds' in str(ex) else 'scheme', str(ex))
            r.cost = None
        if bulk and _get(e, 'quota') is not None:
            try:
                r.quota = parse_quota(e['quota'])
            except ValueError as ex:
                errors.add(idx, em, 'quota', str(ex))
                r.quota = None
        else:
            r.quota = default_quota
        host = opt('mailbox_host', lambda v: v if isinstance(v, str) else _bad('must be a string'))
        r.host = interned.setdefault(host, host) if host else None
        r.active = opt('active', parse_bool)
        r.maildir = _get(e, 'maildir')
        if r.maildir is not None:
            try:
                r.maildir = check_maildir(r.maildir)
            except ValueError as ex:
                errors.add(idx, em, 'maildir', str(ex))
        pw = e.get('password')
        ph = _get(e, 'password_hash')
        if isinstance(pw, int) and not isinstance(pw, bool):
            pw = str(pw)  # YAML reads an all-digit password as a number
        if pw is not None and not isinstance(pw, str):
            errors.add(idx, em, 'password', 'must be a string')
            pw = None
        if pw == '':
            errors.add(idx, em, 'password', 'must not be empty')
            pw = None
        if ph is not None and (not isinstance(ph, str) or not HASH_RE.match(ph)):
            errors.add(idx, em, 'password_hash', 'must be in Dovecot\'s {SCHEME}hash form '
                       '(for example the output of doveadm pw)')
            ph = None
        if pw is not None and ph is not None:
            errors.add(idx, em, 'password', 'give password or password_hash, not both')
        r.password, r.phash = pw, ph
        als = _get(e, 'aliases')
        r.aliases = None
        if als is not None:
            if isinstance(als, str):
                als = [a for a in re.split(r'[\s,;]+', als) if a]
            if not isinstance(als, list):
                errors.add(idx, em, 'aliases', 'must be a list of addresses')
            else:
                out = []
                for a in als:
                    try:
                        a = normalize_email(a)
                    except ValueError as ex:
                        errors.add(idx, em, 'aliases', str(ex))
                        continue
                    if a == em:
                        errors.add(idx, em, 'aliases', '%s is the mailbox itself' % a)
                    elif a not in out:
                        out.append(a)
                r.aliases = out or None
        r.action = None
        r.new_hash = None
        recs.append(r)
    return recs


def _bad(msg):
    raise ValueError(msg)


def check_maildir(value):
    if not isinstance(value, str):
        raise ValueError('must be a string')
    v = value.strip()
    if not v or len(v) > 512:
        raise ValueError('must be 1 to 512 characters')
    if v.startswith('/') or '\0' in v or '..' in v.split('/'):
        raise ValueError('%r must be relative to the mail root, without .. components' % value)
    return v


def public(r_email, domain, quota, host, maildir, active):
    return dict(email=r_email, domain=domain, quota=quota, mailbox_host=host, maildir=maildir, active=active)


def main():
    argument_spec = maildb_argument_spec()
    argument_spec.update(
        email=dict(type='str', aliases=['address']),
        password=dict(type='str', no_log=True),
        password_hash=dict(type='str', no_log=True),
        scheme=dict(type='str', default='SHA512-CRYPT', choices=list(passwords.SCHEMES)),
        rounds=dict(type='int'),
        update_password=dict(type='str', default='always', choices=['always', 'on_create'], no_log=False),
        quota=dict(type='raw'),
        mailbox_host=dict(type='str'),
        placement=dict(type='str', default='fewest_users', choices=list(PLACEMENT_POLICIES)),
        maildir=dict(type='str'),
        active=dict(type='bool'),
        aliases=dict(type='list', elements='str'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        # no_log keeps the entries (and their passwords) out of the invocation log; the
        # module resets no_log_values below so that addresses are not masked in results.
        users=dict(type='list', elements='dict', no_log=True),
        csv=dict(type='path'),
        report_items=dict(type='bool', default=False),
        hash_workers=dict(type='int', default=0),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('email', 'users', 'csv'), ('password', 'password_hash')],
                           required_one_of=[('email', 'users', 'csv')])
    p = module.params
    # Only real secrets stay in no_log_values: the leaves of `users` (addresses, quotas...) must
    # not be masked in results, and matching 100,000 values against the output would take hours.
    # Entry passwords never reach the output: no message or return value contains them.
    module.no_log_values = set(v for v in (p['login_password'], p['password'], p['password_hash']) if v)
    if not passwords.HAS_PASSLIB:
        module.fail_json(msg=missing_required_lib('passlib'), exception=passwords.PASSLIB_IMP_ERR)
    inv = invocation(p, bulk_keys=('users',))

    list_name, raw = entries_from_params(module)
    errors = EntryErrors(list_name)
    recs = collect(module, errors, list_name, raw)
    if list_name == 'users':
        p['users'] = None  # drop the parsed list, the records hold what is needed
    if errors:
        errors.fail(module, invocation=inv)

    report = Report(report_items=p['report_items'], want_diff=module._diff)
    counters = dict(hashed=0, verified=0)
    single = None
    conn = connect(module)
    try:
        require_schema(module, conn, 1)
        cur = conn.cursor()
        present = [r for r in recs if r.state == 'present']
        domains = sorted(set(r.domain for r in present))
        known = dict(select_in(cur, 'SELECT name, kind FROM domain WHERE name', domains))
        cur.execute('SELECT name, state, weight FROM mailbox_host')
        hosts = dict((n, (s, int(w))) for n, s, w in cur.fetchall())

        # existing rows of the addresses we were given
        existing = {}
        cols = 'SELECT email, password, quota, mailbox_host, maildir, active FROM mailbox WHERE '
        if len(recs) > READ_BY_DOMAIN_THRESHOLD:
            wanted = set(r.email for r in recs)
            for row in select_in(cur, cols + 'domain', sorted(set(r.domain for r in recs))):
                if row[0] in wanted:
                    existing[row[0]] = row
            del wanted
        else:
            for row in select_in(cur, cols + 'email', [r.email for r in recs]):
                existing[row[0]] = row

        counts = {}
        if any(r.state == 'present' and r.host is None and r.email not in existing for r in recs):
            cur.execute('SELECT mailbox_host, COUNT(*) FROM mailbox WHERE mailbox_host IS NOT NULL '
                        'GROUP BY mailbox_host')
            counts = dict(cur.fetchall())
        placer = Placer(hosts, counts, p['placement'])

        # --- plan (still validating: errors here also abort before any write) ---
        verify_recs = []
        for r in recs:
            old = existing.get(r.email)
            if r.state == 'absent':
                r.action = 'remove' if old else 'unchanged'
                continue
            lbl = r.email
            if r.domain not in known:
                errors.add(r.idx if list_name else None, lbl, 'email',
                           'domain %r is not present in the mail database (add it with mail_domain first)' % r.domain)
                continue
            if known[r.domain] != 'local':
                errors.add(r.idx if list_name else None, lbl, 'email',
                           'domain %r is of kind %s; mailboxes need a local domain' % (r.domain, known[r.domain]))
                continue
            if r.host is not None:
                if r.host not in hosts:
                    errors.add(r.idx if list_name else None, lbl, 'mailbox_host',
                               'unknown mailbox host %r (add it with mail_host first)' % r.host)
                    continue
                if (old is None or old[3] != r.host) and hosts[r.host][0] not in ACCEPTING_STATES:
                    errors.add(r.idx if list_name else None, lbl, 'mailbox_host',
                               'mailbox host %r does not accept new users (state %s)' % (r.host, hosts[r.host][0]))
                    continue
            if old is None:
                if r.password is None and r.phash is None:
                    errors.add(r.idx if list_name else None, lbl, 'password',
                               'password or password_hash is required to create a mailbox')
                    continue
                if r.host is None:
                    try:
                        r.host = placer.place(r.email)
                    except PlacementError as ex:
                        errors.add(r.idx if list_name else None, lbl, 'mailbox_host', str(ex))
                        continue
                r.action = 'create'
            else:
                r.action = 'update'  # refined below
                if r.upd == 'always' and r.password is not None:
                    verify_recs.append(r)
        if errors:
            errors.fail(module, invocation=inv)

        workers = p['hash_workers']
        # verify stored hashes (update_password=always)
        if verify_recs:
            jobs = ((r.password, existing[r.email][1], r.scheme, r.cost) for r in verify_recs)
            for r, ok in zip(verify_recs, passwords.verify_many(jobs, len(verify_recs), workers)):
                if not ok:
                    r.new_hash = True  # needs hashing
            counters['verified'] = len(verify_recs)
        del verify_recs

        # decide updated / unchanged and build row tuples
        create_hash, create_ready, update_hash, update_ready = [], [], [], []
        removes, alias_rows = [], []
        for r in recs:
            old = existing.get(r.email)
            if r.action == 'remove':
                removes.append(r.email)
                report.add('removed', r.email, public(r.email, r.domain, int(old[2]), old[3], old[4], bool(old[5])), {})
                if not list_name:
                    single = public(r.email, r.domain, int(old[2]), old[3], old[4], bool(old[5]))
                continue
            if r.action == 'unchanged':
                report.add('unchanged', r.email)
                continue
            if r.action == 'create':
                row = [r.email, r.local, r.domain, None, r.quota or 0, r.host,
                       r.maildir or '%s/%s/' % (r.domain, r.local), int(r.active if r.active is not None else True)]
                after = public(r.email, r.domain, row[4], row[5], row[6], bool(row[7]))
                if report.want_diff:
                    after['password_changed'] = True
                report.add('created', r.email, {}, after)
                if r.phash is not None:
                    row[3] = r.phash
                    create_ready.append(row)
                else:
                    create_hash.append((r, row))
            else:
                before = public(r.email, r.domain, int(old[2]), old[3], old[4], bool(old[5]))
                after = public(r.email, r.domain,
                               r.quota if r.quota is not None else before['quota'],
                               r.host if r.host is not None else before['mailbox_host'],
                               r.maildir if r.maildir is not None else before['maildir'],
                               r.active if r.active is not None else before['active'])
                pw_change = r.new_hash is True or (r.upd == 'always' and r.phash is not None and r.phash != old[1])
                row = [r.email, r.local, r.domain, old[1], after['quota'], after['mailbox_host'],
                       after['maildir'], int(after['active'])]
                if pw_change or after != before:
                    if report.want_diff and pw_change:
                        after['password_changed'] = True
                    report.add('updated', r.email, before, after)
                    if r.new_hash is True:
                        update_hash.append((r, row))
                    else:
                        if pw_change:
                            row[3] = r.phash
                        update_ready.append(row)
                else:
                    r.action = 'unchanged'
                    report.add('unchanged', r.email)
            if not list_name:
                single = dict(after)
                single.pop('password_changed', None)
            if r.aliases:
                alias_rows.extend((a, r.email, r) for a in r.aliases)

        # aliases of the users: validate their domains, find the missing rows
        new_aliases = []
        if alias_rows:
            adomains = sorted(set(a.split('@', 1)[1] for a, d, r in alias_rows))
            aknown = set(x[0] for x in select_in(cur, 'SELECT name FROM domain WHERE name', adomains))
            have = set(select_in(cur, 'SELECT source, destination FROM alias WHERE source',
                                 sorted(set(a for a, d, r in alias_rows))))
            for a, d, r in alias_rows:
                adom = a.split('@', 1)[1]
                if adom not in aknown:
                    errors.add(r.idx if list_name else None, r.email, 'aliases',
                               'domain %r of alias %s is not present in the mail database' % (adom, a))
                elif (a, d) not in have:
                    new_aliases.append((a, d, adom, 1))
                    if r.action == 'unchanged':
                        # the mailbox itself is as requested, but an alias is added
                        r.action = 'update'
                        report.counts['unchanged'] -= 1
                        if report.report_items:
                            report.items['unchanged'].remove(r.email)
                        report.add('updated', r.email, None, None)
            if errors:
                errors.fail(module, invocation=inv)
        del alias_rows

        if not module.check_mode and report.changed:
            if removes:
                delete_in(cur, 'DELETE FROM alias WHERE destination', removes)
                delete_in(cur, 'DELETE FROM mailbox WHERE email', removes)
            executemany(cur, INSERT_SQL, create_ready)
            executemany(cur, UPSERT_SQL, update_ready)
            # hash on all cores; write each batch as soon as it is hashed
            pending = create_hash + update_hash
            n_create = len(create_hash)
            if pending:
                jobs = ((r.password, r.scheme, r.cost) for r, row in pending)
                batch_ins, batch_upd = [], []
                for i, h in enumerate(passwords.hash_many(jobs, len(pending), workers)):
                    r, row = pending[i]
                    row[3] = h
                    r.password = None
                    (batch_ins if i < n_create else batch_upd).append(row)
                    if len(batch_ins) >= BATCH_SIZE:
                        cur.executemany(INSERT_SQL, batch_ins)
                        batch_ins = []
                    if len(batch_upd) >= BATCH_SIZE:
                        cur.executemany(UPSERT_SQL, batch_upd)
                        batch_upd = []
                executemany(cur, INSERT_SQL, batch_ins)
                executemany(cur, UPSERT_SQL, batch_upd)
                counters['hashed'] = len(pending)
            executemany(cur, 'INSERT INTO alias (source, destination, domain, active) VALUES (%s, %s, %s, %s)',
                        new_aliases)
            conn.commit()
    except pymysql.err.MySQLError as e:
        conn.rollback()
        module.fail_json(msg='Database error, nothing was changed: %s' % db_error_text(e), invocation=inv)
    except Exception:
        conn.rollback()
        raise
    finally:
        conn.close()

    result = report.result()
    result.update(counters)
    if single:
        result['user'] = single
    module.exit_json(invocation=inv, **result)


if __name__ == '__main__':
    main()
