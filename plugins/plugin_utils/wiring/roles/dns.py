# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role dns: the zone of each mail domain on the authoritative DNS hosts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.mailops.mailstack.plugins.plugin_utils.dns_zone import dns_zone
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import INTERNET, listen, role_wiring

# mailstack_tls_rpt_rua: where TLS reports go (RFC 8460, 3), one or more
# mailto: or https: URIs; nothing that would break the record's quoting.
TLS_RPT_RUA = re.compile(r'^(mailto:[^@\s",;!]+@[A-Za-z0-9.-]+|https://[^\s",;!]+)'
                         r'(,(mailto:[^@\s",;!]+@[A-Za-z0-9.-]+|https://[^\s",;!]+))*$')


def _tls_rpt_rua(host, inventory, domain):
    rua = inventory.optional(host.name, 'mailstack_tls_rpt_rua') or 'mailto:postmaster@%s' % domain
    if rua == 'none':
        return None
    if not TLS_RPT_RUA.match(str(rua)):
        inventory.errors.append("%s: mailstack_tls_rpt_rua must be 'none' or mailto: and https: URIs separated "
                                "by commas, not %r" % (host.name, rua))
        return None
    return rua


def dns_options(host, site, inventory):
    """A zone per mail domain: the primary's holds the hosts' names, each
    other's points at them (dns_zone.py), each with its own DMARC policy and
    MTA-STS policy."""
    if not host.domain:
        return {}
    addresses = {}
    for other in site.mail_hosts:
        address = inventory.reach(other, 'its records in the zone of %s' % host.domain)
        if address:
            addresses[other] = address
    zones = [dns_zone(site.decision, d.name, addresses, d.dmarc_policy, host.mta_sts.get(d.name),
                      _tls_rpt_rua(host, inventory, d.name), host_domain=host.domain, kind=d.kind)
             for d in host.domains]
    return {'dns_zones': zones}


def dns_requires(host, site, inventory, options):
    return [('mailstack_domain', "the zones group 'mail_dns' serves are the mail domains' (mailstack_domain, or the "
             "first of mailstack_domains)", 'non_empty')]


def dns_listens(host, site, inventory, options):
    # Authoritative for the mail domain: every resolver asks it.
    return [listen(53, proto, "DNS: the mail domain's zone (authoritative)", [INTERNET]) for proto in ('udp', 'tcp')]


WIRING = role_wiring('dns', ('mail_dns',), dns_options, publishes_mta_sts=True, requires=dns_requires,
                     listens=dns_listens)
