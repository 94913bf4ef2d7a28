# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role dns: the mail domain's zone on the authoritative DNS hosts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.mailops.mailstack.plugins.plugin_utils.dns_zone import dns_zone
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import INTERNET, listen, role_wiring

# The DMARC policies the mail domain may publish (mailstack_dmarc_policy).
DMARC_POLICIES = ('none', 'quarantine', 'reject')

# mailstack_tls_rpt_rua: where TLS reports go (RFC 8460, 3), one or more
# mailto: or https: URIs; nothing that would break the record's quoting.
TLS_RPT_RUA = re.compile(r'^(mailto:[^@\s",;!]+@[A-Za-z0-9.-]+|https://[^\s",;!]+)'
                         r'(,(mailto:[^@\s",;!]+@[A-Za-z0-9.-]+|https://[^\s",;!]+))*$')


def _dmarc_policy(host, inventory):
    policy = inventory.optional(host.name, 'mailstack_dmarc_policy', 'quarantine')
    if policy not in DMARC_POLICIES:
        inventory.errors.append("%s: mailstack_dmarc_policy must be one of %s, not %r"
                                % (host.name, ', '.join(DMARC_POLICIES), policy))
        return 'quarantine'
    return policy


def _tls_rpt_rua(host, inventory):
    rua = inventory.optional(host.name, 'mailstack_tls_rpt_rua') or 'mailto:postmaster@%s' % host.domain
    if rua == 'none':
        return None
    if not TLS_RPT_RUA.match(str(rua)):
        inventory.errors.append("%s: mailstack_tls_rpt_rua must be 'none' or mailto: and https: URIs separated "
                                "by commas, not %r" % (host.name, rua))
        return None
    return rua


def dns_options(host, site, inventory):
    if not host.domain:
        return {}
    addresses = {}
    for other in site.mail_hosts:
        address = inventory.reach(other, 'its records in the zone of %s' % host.domain)
        if address:
            addresses[other] = address
    policy = _dmarc_policy(host, inventory)
    rua = _tls_rpt_rua(host, inventory)
    return {'dns_zones': [dns_zone(site.decision, host.domain, addresses, policy, host.mta_sts, rua)]}


def dns_requires(host, site, inventory, options):
    return [('mailstack_domain', "the zone group 'mail_dns' serves is the mail domain's", 'non_empty')]


def dns_listens(host, site, inventory, options):
    # Authoritative for the mail domain: every resolver asks it.
    return [listen(53, proto, "DNS: the mail domain's zone (authoritative)", [INTERNET]) for proto in ('udp', 'tcp')]


WIRING = role_wiring('dns', ('mail_dns',), dns_options, publishes_mta_sts=True, requires=dns_requires,
                     listens=dns_listens)
