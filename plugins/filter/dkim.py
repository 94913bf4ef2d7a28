# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""DKIM selector records from the public keys the dkim role reports (see
mail_dkim_records.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError

_B64 = re.compile(r'^[A-Za-z0-9+/]+={0,2}$')
_LABEL = re.compile(r'^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$')
# A TXT record is made of strings of at most 255 bytes each.
_CHUNK = 250


def dkim_txt(public_key):
    """The TXT value of a selector: quoted strings of at most 250 bytes."""
    text = 'v=DKIM1; k=rsa; p=' + public_key
    return ' '.join('"%s"' % text[i:i + _CHUNK] for i in range(0, len(text), _CHUNK))


def _report_keys(who, report):
    """(domain, selector, public key) of a report: per domain ('keys':
    {domain: {selector: key}}, a key per domain and selector), or of a
    report made before keys were per domain ('selectors': {selector: key},
    each key used for every one of 'domains')."""
    if 'keys' in report:
        keys = report.get('keys') or {}
        if not isinstance(keys, dict) or not all(isinstance(v, dict) for v in keys.values()):
            raise AnsibleFilterError('mail_dkim_records: %s: keys must map each domain to {selector: key}' % who)
        return [(domain, selector, key) for domain in keys for selector, key in sorted(keys[domain].items())]
    selectors = report.get('selectors') or {}
    return [(domain, selector, key) for selector, key in sorted(selectors.items())
            for domain in report.get('domains') or []]


def _check_key(who, selector, key):
    if not _LABEL.match(str(selector)):
        raise AnsibleFilterError("mail_dkim_records: %s: selector '%s' is not one DNS label" % (who, selector))
    if not isinstance(key, str) or not _B64.match(key):
        raise AnsibleFilterError("mail_dkim_records: %s: the public key of selector '%s' is not base64"
                                 % (who, selector))


def _items(reports):
    if isinstance(reports, dict):
        return sorted(reports.items())
    if isinstance(reports, (list, tuple)):
        return [('report %d' % i, r) for i, r in enumerate(reports)]
    raise AnsibleFilterError('mail_dkim_records expects a list or dict of DKIM reports, not %r' % (reports,))


def mail_dkim_records(reports, zones=None):
    """One TXT record per domain and published selector of each report.

    reports: the dkim role's local facts (ansible_local.mailstack_dkim) of
    the signing hosts, as a list, or a dict by host (a host without a report
    is skipped: its keys are not made yet). zones: when given, only records
    of these zones (the names of dns_zones) are returned.
    """
    records = []
    seen = {}
    for who, report in _items(reports):
        if not report:
            continue
        if not isinstance(report, dict):
            raise AnsibleFilterError('mail_dkim_records: %s: %r is not a DKIM report' % (who, report))
        for domain, selector, key in _report_keys(who, report):
            _check_key(who, selector, key)
            if zones is not None and domain not in zones:
                continue
            name = '%s._domainkey' % selector
            owner = seen.setdefault((domain, name), who)
            if owner != who:
                raise AnsibleFilterError("mail_dkim_records: %s and %s both publish selector '%s' of %s: give "
                                         "each signing host its own dkim_selector" % (owner, who, selector, domain))
            records.append({'zone': domain, 'name': name, 'type': 'TXT', 'value': dkim_txt(key)})
    return records


class FilterModule(object):
    def filters(self):
        return {'mail_dkim_records': mail_dkim_records}
