# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a running tgt target differs in from its configuration (see
tgt_target_differences.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError


def parse_targets(text):
    """tgtadm --mode target --op show -> {iqn: {'luns': {n: path}, 'accounts': [...], 'acl': [...]}}."""
    targets = {}
    target = lun = section = None
    for line in text.splitlines():
        m = re.match(r'^Target \d+: (\S+)$', line)
        if m:
            target = targets.setdefault(m.group(1), {'luns': {}, 'accounts': [], 'acl': []})
            lun = section = None
            continue
        if target is None:
            continue
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if indent == 4 and stripped.endswith(':'):
            section = stripped[:-1]
            continue
        if section == 'LUN information':
            m = re.match(r'^LUN: (\d+)$', stripped)
            if m:
                lun = int(m.group(1))
                target['luns'][lun] = None
            m = re.match(r'^Backing store path: (.*)$', stripped)
            if m and lun is not None:
                target['luns'][lun] = m.group(1).strip()
        elif section == 'Account information' and indent == 8 and stripped:
            target['accounts'].append(stripped.split()[0])
        elif section == 'ACL information' and indent == 8 and stripped:
            target['acl'].append(stripped)
    return targets


def tgt_target_differences(show, iqn, backing_store, initiators, account):
    """Each way the running target differs from what the configuration asks, as sentences."""
    if not isinstance(show, str):
        raise AnsibleFilterError('tgt_target_differences expects the text of tgtadm --op show, got %s'
                                 % type(show).__name__)
    target = parse_targets(show).get(iqn)
    if target is None:
        return ['no target %s is running' % iqn]
    differences = []
    path = target['luns'].get(1)
    if path != backing_store:
        differences.append('LUN 1 is %s, not %s' % ('missing' if path is None else 'on ' + path, backing_store))
    extra = sorted(set(target['luns']) - {0, 1})
    if extra:
        differences.append('it has other LUNs (%s)' % ', '.join(str(n) for n in extra))
    if sorted(target['acl']) != sorted(str(a) for a in initiators):
        allowed = ', '.join(target['acl']) or 'nobody'
        differences.append('it lets in %s, not %s' % (allowed, ', '.join(str(a) for a in initiators)))
    if target['accounts'] != [account]:
        differences.append('its CHAP accounts are %s, not %s' % (', '.join(target['accounts']) or 'none', account))
    return differences


class FilterModule(object):
    def filters(self):
        return {'tgt_target_differences': tgt_target_differences}
