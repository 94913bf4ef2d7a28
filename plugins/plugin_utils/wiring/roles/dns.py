# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role dns: the zone of each mail domain on the authoritative DNS hosts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.mailops.mailstack.plugins.plugin_utils.dns_zone import acme_delegations, dns_zone
from ansible_collections.mailops.mailstack.plugins.plugin_utils.hostnames import host_fqdn
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import INTERNET, listen, role_wiring, unique
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.roles.tls import dns01_hosts

# The TSIG key's settings each DNS-01 host signs with (tls role) and the
# update target checks with (dns role): they must be the same key.
TSIG_OPTIONS = (('tls_acme_tsig_name', 'dns_acme_tsig_name'), ('tls_acme_tsig_algorithm', 'dns_acme_tsig_algorithm'),
                ('tls_acme_tsig_secret', 'dns_acme_tsig_secret'))

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


def _check_tsig(target, hosts, inventory):
    """Each DNS-01 host signs with the key the update target checks; a
    mismatch names hosts and options, never a value (a secret)."""
    for name, _names in hosts:
        for tls_option, dns_option in TSIG_OPTIONS:
            signs, checks = inventory.get(name, tls_option), inventory.get(target, dns_option)
            # A missing one is the requirement's error (dns_requires, tls_requires).
            if signs and checks and signs != checks:
                inventory.errors.append('%s: %s is not the %s of %s, which takes its ACME DNS-01 updates: both '
                                        'are the TSIG key its updates are signed and checked with'
                                        % (name, tls_option, dns_option, target))


def _acme(host, site, inventory):
    """(challenge zones this host serves, delegation names): every mail_dns
    host delegates each DNS-01 name's _acme-challenge to the update target
    (the first mail_dns host), which alone holds those zones."""
    target = site.groups['mail_dns'][0]
    hosts = dns01_hosts(site, inventory)
    names = unique(n for _host, host_names in hosts for n in host_names)
    if host.name != target:
        return [], names
    _check_tsig(target, hosts, inventory)
    return ['_acme-challenge.%s' % n for n in names], names


def dns_options(host, site, inventory):
    """A zone per mail domain: the primary's holds the hosts' names, each
    other's points at them (dns_zone.py), each with its own DMARC policy and
    MTA-STS policy; the ACME challenge zones and their delegations."""
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
    acme_zones, delegated = _acme(host, site, inventory)
    if delegated:
        target = '%s.' % host_fqdn(site.groups['mail_dns'][0], host.domain)
        for zone in zones:
            zone['records'].extend(acme_delegations(zone['name'], delegated, target))
    options = {'dns_zones': zones}
    if acme_zones:
        options['dns_acme_zones'] = acme_zones
    return options


def dns_requires(host, site, inventory, options):
    required = [('mailstack_domain', "the zones group 'mail_dns' serves are the mail domains' (mailstack_domain, or "
                 "the first of mailstack_domains)", 'non_empty')]
    if options.get('dns_acme_zones') or inventory.is_set(host.name, 'dns_acme_zones'):
        required.append(('dns_acme_tsig_secret', 'dns_acme_zones take the ACME DNS-01 updates signed with this '
                         'TSIG key', 'non_empty'))
    return required


def dns_listens(host, site, inventory, options):
    # Authoritative for the mail domain: every resolver asks it.
    return [listen(53, proto, "DNS: the mail domain's zone (authoritative)", [INTERNET]) for proto in ('udp', 'tcp')]


WIRING = role_wiring('dns', ('mail_dns',), dns_options, publishes_mta_sts=True, requires=dns_requires,
                     listens=dns_listens)
