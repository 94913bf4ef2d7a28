# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Input validation for the mail provisioning modules (no database access here).

Every function raises ``ValueError`` with a message that names the problem but
not the entry; callers add the entry (index, address) and the field.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import math
import re

# RFC 5321/5322 dot-atom local part (no quoted strings: Postfix and Dovecot
# lookups and maildir paths are far simpler without them).
_LOCAL_RE = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL_RE = re.compile(r'^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$')
_QUOTA_RE = re.compile(r'^([0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?)(i?b)?$')
_UNITS = {'': 1, 'k': 1024, 'm': 1024 ** 2, 'g': 1024 ** 3, 't': 1024 ** 4, 'p': 1024 ** 5}
QUOTA_MAX = 2 ** 63 - 1

HOST_STATES = ('active', 'draining', 'readonly')
# Host states that accept new mailboxes.
ACCEPTING_STATES = ('active',)
PLACEMENT_POLICIES = ('fewest_users', 'weighted', 'stable_hash')


def normalize_domain(value):
    """Lower-case, IDNA (punycode) encoded domain name; raises ValueError."""
    if not isinstance(value, str):
        raise ValueError('must be a string, got %s' % type(value).__name__)
    name = value.strip().rstrip('.').lower()
    if not name:
        raise ValueError('is empty')
    try:
        name.encode('ascii')
    except UnicodeEncodeError:
        try:
            name = name.encode('idna').decode('ascii')
        except UnicodeError as e:
            raise ValueError('%r is not a valid internationalized domain name (%s)' % (value, e))
    if len(name) > 253:
        raise ValueError('%r is longer than 253 characters' % value)
    labels = name.split('.')
    if len(labels) < 2:
        raise ValueError('%r is not a fully qualified domain name (it needs at least one dot)' % value)
    for label in labels:
        if not _LABEL_RE.match(label):
            raise ValueError('%r is not a valid domain name (bad label %r)' % (value, label))
    if labels[-1].isdigit():
        raise ValueError('%r is not a valid domain name (numeric top-level label)' % value)
    return name


def split_email(value, allow_catchall=False):
    """Return (email, local_part, domain), normalised to lower case; raises ValueError.

    With allow_catchall, ``@example.org`` (Postfix catch-all alias source) is
    accepted and returned with an empty local part.
    """
    if not isinstance(value, str):
        raise ValueError('must be a string, got %s' % type(value).__name__)
    text = value.strip()
    if text.count('@') != 1:
        raise ValueError('%r is not an email address (it needs exactly one @)' % value)
    local, domain = text.rsplit('@', 1)
    local = local.lower()
    try:
        domain = normalize_domain(domain)
    except ValueError as e:
        raise ValueError('%r has an invalid domain: %s' % (value, e))
    if local == '' and allow_catchall:
        return '@' + domain, '', domain
    if not local:
        raise ValueError('%r has an empty local part' % value)
    if len(local) > 64:
        raise ValueError('%r has a local part longer than 64 characters' % value)
    if not _LOCAL_RE.match(local):
        raise ValueError('%r has an invalid local part (allowed: letters, digits, . and !#$%%&\'*+/=?^_`{|}~-, '
                         'no leading, trailing or double dots)' % value)
    email = '%s@%s' % (local, domain)
    if len(email) > 254:
        raise ValueError('%r is longer than 254 characters' % value)
    return email, local, domain


def normalize_email(value, allow_catchall=False):
    return split_email(value, allow_catchall)[0]


def parse_quota(value):
    """Bytes from ``2G``, ``500M``, ``1.5GiB``, ``1024`` or an int; 0 means unlimited.

    Units are binary (K = 1024), as in Dovecot's quota settings.
    """
    if isinstance(value, bool):
        raise ValueError('must be a size such as 2G, 500M or a number of bytes, got a boolean')
    if isinstance(value, int):
        n = value
    elif isinstance(value, float):
        if value != int(value):
            raise ValueError('%r is not a whole number of bytes' % value)
        n = int(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if text.startswith('-'):
            raise ValueError('%r is negative; use 0 for unlimited' % value)
        m = _QUOTA_RE.match(text)
        if not m:
            raise ValueError('%r is not a size (examples: 2G, 500M, 1024, 0 = unlimited)' % value)
        number, unit = m.group(1), m.group(2)
        if '.' in number:
            if not unit:
                raise ValueError('%r is not a whole number of bytes' % value)
            n = int(round(float(number) * _UNITS[unit]))
        else:
            n = int(number) * _UNITS[unit]
    else:
        raise ValueError('must be a size such as 2G, 500M or a number of bytes, got %s' % type(value).__name__)
    if n < 0:
        raise ValueError('%r is negative; use 0 for unlimited' % value)
    if n > QUOTA_MAX:
        raise ValueError('%r is too large' % value)
    return n


_TRUE = ('1', 'true', 'yes', 'y', 'on')
_FALSE = ('0', 'false', 'no', 'n', 'off')


def parse_bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in _TRUE:
            return True
        if v in _FALSE:
            return False
    raise ValueError('%r is not a boolean (use true/false, yes/no, 1/0)' % (value,))


def parse_int(value, minimum=None, maximum=None):
    if isinstance(value, bool):
        raise ValueError('must be an integer, got a boolean')
    if isinstance(value, int):
        n = value
    elif isinstance(value, str) and re.match(r'^\s*-?[0-9]+\s*$', value):
        n = int(value)
    else:
        raise ValueError('%r is not an integer' % (value,))
    if minimum is not None and n < minimum:
        raise ValueError('%d is below the minimum %d' % (n, minimum))
    if maximum is not None and n > maximum:
        raise ValueError('%d is above the maximum %d' % (n, maximum))
    return n


def parse_choice(value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError('%r is not one of %s' % (value, ', '.join(choices)))
    return value


class PlacementError(Exception):
    pass


class Placer(object):
    """Chooses the mailbox host of each new mailbox.

    ``hosts`` maps host name to (state, weight); ``counts`` maps host name to
    the number of mailboxes it holds now. Only hosts whose state is in
    ACCEPTING_STATES (and, for weighted policies, weight > 0) take new users.
    Policies:

    - ``fewest_users``: the accepting host with the fewest mailboxes (ties by
      name); counts include the users placed in this run.
    - ``weighted``: fills hosts in proportion to their weight: the host with the
      lowest (mailboxes + 1) / weight (ties by name).
    - ``stable_hash``: weighted rendezvous hashing of the address: the same
      address always lands on the same host for a given set of accepting hosts,
      and adding a host only moves the share that the new host takes.
    """

    def __init__(self, hosts, counts, policy):
        if policy not in PLACEMENT_POLICIES:
            raise ValueError('unknown placement policy %r' % policy)
        self.policy = policy
        self.any_hosts = bool(hosts)
        if policy == 'fewest_users':
            self.accepting = sorted(n for n, (state, weight) in hosts.items() if state in ACCEPTING_STATES)
        else:
            self.accepting = sorted(n for n, (state, weight) in hosts.items()
                                    if state in ACCEPTING_STATES and weight > 0)
        self.weights = dict((n, hosts[n][1]) for n in self.accepting)
        self.counts = dict((n, int(counts.get(n, 0))) for n in self.accepting)

    def place(self, email):
        """Host name for a new mailbox; None when no mailbox hosts are defined at all."""
        if not self.any_hosts:
            return None
        if not self.accepting:
            raise PlacementError('no mailbox host accepts new users (state must be active%s)'
                                 % ('' if self.policy == 'fewest_users' else ' and weight above 0'))
        if self.policy == 'fewest_users':
            host = min(self.accepting, key=lambda n: (self.counts[n], n))
        elif self.policy == 'weighted':
            host = min(self.accepting, key=lambda n: ((self.counts[n] + 1.0) / self.weights[n], n))
        else:
            host = self.stable_hash(email)
        self.counts[host] += 1
        return host

    def stable_hash(self, email):
        best, best_score = None, None
        for n in self.accepting:
            digest = hashlib.sha256(('%s\0%s' % (n, email)).encode('utf-8')).digest()
            # uniform in (0, 1)
            u = (int.from_bytes(digest[:8], 'big') + 1) / float(2 ** 64 + 2)
            score = self.weights[n] / -math.log(u)
            if best_score is None or score > best_score:
                best, best_score = n, score
        return best
