# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A mail domain's MTA-STS policy (RFC 8461) for a topology decision (the
filter mail_mta_sts_policy; see mail_mta_sts_policy.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib

from ansible.errors import AnsibleFilterError

from ansible_collections.mailops.mailstack.plugins.plugin_utils.topology import mx_targets

# MTA-STS policy modes (RFC 8461, 5) and the longest max_age it allows.
MTA_STS_MODES = ('none', 'testing', 'enforce')
MTA_STS_MAX_AGE = 31557600


def mta_sts_policy(decision, domain, mode='testing', max_age=604800, mx_domain=None):
    """The domain's MTA-STS policy and its id: {'text', 'id', 'mx'}. Its mx
    lines are the names of the domain's MX records: the hosts' names in
    mx_domain (the primary mail domain, whose names the hosts carry; by
    default the domain itself)."""
    if not isinstance(decision, dict) or 'groups' not in decision:
        raise AnsibleFilterError('mail_mta_sts_policy expects the result of mail_topology')
    if mode not in MTA_STS_MODES:
        raise AnsibleFilterError('mail_mta_sts_policy: mode must be one of %s, not %r' % (', '.join(MTA_STS_MODES), mode))
    if isinstance(max_age, bool) or not isinstance(max_age, int) or not 0 <= max_age <= MTA_STS_MAX_AGE:
        raise AnsibleFilterError('mail_mta_sts_policy: max_age must be a whole number of seconds from 0 to %d, not %r'
                                 % (MTA_STS_MAX_AGE, max_age))
    names = [name for _preference, name in mx_targets(decision, mx_domain or domain)]
    if not names and mode != 'none':
        raise AnsibleFilterError('mail_mta_sts_policy: the topology has no MX host for %s' % domain)
    lines = ['version: STSv1', 'mode: %s' % mode] + ['mx: %s' % n for n in names] + ['max_age: %d' % max_age]
    text = ''.join(line + '\r\n' for line in lines)
    # The id changes when, and only when, the policy does.
    return {'text': text, 'id': hashlib.sha256(text.encode('ascii')).hexdigest()[:32], 'mx': names}
