# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The site's mail domains as the inventory gives them: mailstack_domains (a
list; the first is the primary, whose names the hosts carry) or
mailstack_domain (the one-domain form), each domain with its options."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from collections import namedtuple

from ansible_collections.mailops.mailstack.plugins.module_utils.validation import parse_quota
from ansible_collections.mailops.mailstack.plugins.plugin_utils.mta_sts import MTA_STS_MODES

# The DMARC policies a domain may publish (dmarc_policy, mailstack_dmarc_policy).
DMARC_POLICIES = ('none', 'quarantine', 'reject')

# mta_sts_mode (mailstack_mta_sts_mode): a policy mode, or 'off' to publish none.
MTA_STS_CHOICES = ('off',) + MTA_STS_MODES

KINDS = ('local', 'relay')

# One domain: its name; kind 'local' (mailboxes here) or 'relay' (accepted
# and forwarded to relay_host, never stored: mail_domain's kind); the DKIM
# selector its signing hosts use (None: each host's dkim_selector; '{host}'
# stands for the host's name), its DMARC policy, its MTA-STS mode, the quota
# of its new mailboxes (bytes; None: unlimited, mail_user's domain_quotas).
Domain = namedtuple('Domain', 'name kind relay_host dkim_selector dmarc_policy mta_sts_mode default_quota')

OPTIONS = ('name', 'kind', 'relay_host', 'dkim_selector', 'dmarc_policy', 'mta_sts_mode', 'default_quota')

_NAME = re.compile(r'^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$')
_SELECTOR = re.compile(r'^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$')
# Postfix next-hop syntax as mail_domain takes it: [address] or a name, an optional port.
_RELAY_HOST = re.compile(r'^(\[[0-9A-Za-z.:-]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$')


def _check_choice(errors, where, field, value, choices):
    if value not in choices:
        errors.append('%s: %s must be one of %s, not %r' % (where, field, ', '.join(choices), value))
        return False
    return True


def _selector(errors, where, value):
    if value is None:
        return None
    if not isinstance(value, str) or not _SELECTOR.match(value.replace('{host}', 'h')):
        errors.append("%s: dkim_selector %r must be one DNS label (letters, digits, inner hyphens; '{host}' stands "
                      "for the signing host's name)" % (where, value))
        return None
    return value


def _relay_host(errors, where, kind, value):
    if kind != 'relay':
        if value:
            errors.append('%s: relay_host is only for kind relay (a local domain is stored here)' % where)
        return None
    if not value or not isinstance(value, str) or not _RELAY_HOST.match(value):
        errors.append("%s: relay_host must be the next hop the domain's mail is forwarded to, in Postfix syntax "
                      "([192.0.2.7]:25, [relay.example.net]), not %r" % (where, value))
        return None
    return value


def _quota(errors, where, kind, value):
    if value is None:
        return None
    if kind != 'local':
        errors.append('%s: default_quota is only for a local domain (a relay domain has no mailboxes here)' % where)
        return None
    try:
        return parse_quota(value)
    except ValueError as e:
        errors.append('%s: default_quota: %s' % (where, e))
        return None


def _domain(errors, index, entry, defaults):
    """One Domain from an entry of mailstack_domains (a name, or a dict)."""
    entry = {'name': entry} if isinstance(entry, str) else entry
    if not isinstance(entry, dict):
        errors.append('mailstack_domains[%d]: %r is neither a domain name nor a dict' % (index, entry))
        return None
    name = entry.get('name')
    where = 'mailstack_domains[%d] (%s)' % (index, name)
    if not isinstance(name, str) or not _NAME.match(name):
        errors.append('%s: name must be a domain name in lower case (letters, digits, hyphens, dots)' % where)
        return None
    unknown = sorted(set(entry) - set(OPTIONS))
    if unknown:
        errors.append('%s: unknown option(s) %s (known: %s)' % (where, ', '.join(unknown), ', '.join(OPTIONS)))
    kind = entry.get('kind', 'local')
    dmarc = entry.get('dmarc_policy', defaults['dmarc_policy'])
    mode = entry.get('mta_sts_mode', defaults['mta_sts_mode'])
    ok = all([_check_choice(errors, where, 'kind', kind, KINDS),
              _check_choice(errors, where, 'dmarc_policy', dmarc, DMARC_POLICIES),
              _check_choice(errors, where, 'mta_sts_mode', mode, MTA_STS_CHOICES)])
    if index == 0 and kind == 'relay':
        errors.append('%s: the first domain is the primary, whose names the hosts carry: it must be local' % where)
    relay_host = _relay_host(errors, where, kind, entry.get('relay_host'))
    selector = _selector(errors, where, entry.get('dkim_selector'))
    quota = _quota(errors, where, kind, entry.get('default_quota'))
    return Domain(name, kind, relay_host, selector, dmarc, mode, quota) if ok else None


def _entries(inventory, host):
    """The inventory's list of domains (mailstack_domains, else
    mailstack_domain alone); errors when the two disagree."""
    single = inventory.optional(host, 'mailstack_domain')
    entries = inventory.optional(host, 'mailstack_domains')
    if entries is None or entries == []:
        return [single] if single else []
    if not isinstance(entries, (list, tuple)):
        inventory.errors.append('mailstack_domains must be a list of domains (names or dicts), not %r' % (entries,))
        return []
    first = entries[0].get('name') if isinstance(entries[0], dict) else entries[0]
    if single and single != first:
        inventory.errors.append('mailstack_domain (%s) and the first of mailstack_domains (%s) differ: the first '
                                'is the primary domain; set one of the two' % (single, first))
    return list(entries)


def domains(inventory, host):
    """The host's view of the site's domains: [Domain], the primary first
    ([] without a domain). Each wrong entry is an error naming the domain and
    the field (an entry in error is left out)."""
    defaults = {'dmarc_policy': inventory.optional(host, 'mailstack_dmarc_policy', 'quarantine'),
                'mta_sts_mode': inventory.optional(host, 'mailstack_mta_sts_mode', 'testing')}
    for field, name, choices in (('dmarc_policy', 'mailstack_dmarc_policy', DMARC_POLICIES),
                                 ('mta_sts_mode', 'mailstack_mta_sts_mode', MTA_STS_CHOICES)):
        if defaults[field] not in choices:
            # A setting of the whole site (the same on every host).
            inventory.errors.append('%s must be one of %s, not %r' % (name, ', '.join(choices), defaults[field]))
            defaults[field] = 'quarantine' if field == 'dmarc_policy' else 'off'
    result, seen = [], set()
    for index, entry in enumerate(_entries(inventory, host)):
        domain = _domain(inventory.errors, index, entry, defaults)
        if domain is None:
            continue
        if domain.name in seen:
            inventory.errors.append('mailstack_domains[%d] (%s): the domain is listed twice' % (index, domain.name))
            continue
        seen.add(domain.name)
        result.append(domain)
    return result


def local_domains(host_domains):
    return [d for d in host_domains if d.kind == 'local']


def database_domains(host_domains):
    """mail_domain's entries: name, kind, and a relay domain's next hop."""
    return [dict([('name', d.name), ('kind', d.kind)] + ([('relay_host', d.relay_host)] if d.relay_host else []))
            for d in host_domains]
