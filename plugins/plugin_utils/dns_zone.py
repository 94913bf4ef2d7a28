# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A mail domain's DNS zone for a topology decision (the filter
mail_dns_zone; see mail_dns_zone.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.mailops.mailstack.plugins.plugin_utils.hostnames import host_fqdn, host_label
from ansible_collections.mailops.mailstack.plugins.plugin_utils.topology import MAIL_GROUPS, mx_targets


def _host_names(groups, domain):
    """(name, host): every mail host under its own name in the zone, once."""
    hosts = []
    for name in MAIL_GROUPS:
        for host in groups[name]:
            if host not in hosts:
                hosts.append(host)
    return [(host_label(host, domain), host) for host in hosts]


def _tier_names(decision):
    """(name, host): the names a tier shares, one record per host (DNS round robin)."""
    g = decision['groups']
    # The webmail hosts' name (in their certificates) in every topology.
    webmail = [('webmail', host) for host in g['mail_webmail']]
    if decision['topology'] == 'nfs_shared':
        return [('mail', host) for host in g['mail_mx']] + webmail
    if decision['topology'] == 'sharded':
        return ([('smtp', host) for host in g['mail_smtp']]
                + [(name, host) for host in g['mail_proxy'] for name in ('imap', 'pop3')] + webmail)
    return webmail


def _address_records(names, addresses, missing):
    """A records (AAAA for a host reached over IPv6); hosts without an address go to missing."""
    records = []
    for name, host in names:
        if host not in addresses:
            missing.append(host)
        else:
            kind = 'AAAA' if ':' in addresses[host] else 'A'
            records.append({'name': name, 'type': kind, 'value': addresses[host]})
    return records


def dns_zone(decision, domain, addresses, dmarc_policy='quarantine', mta_sts=None, tls_rpt_rua=None,
             host_domain=None, kind='local'):
    """The zone: {'name', 'nameservers', 'records'}. host_domain: the primary
    mail domain, whose names the hosts carry (by default the domain itself).
    Its zone holds the hosts' and the tiers' names; another domain's zone
    points its MX, and the name servers, at them. A relay domain (kind
    'relay': its mail is forwarded to the server that sends it) gets the
    records of receiving only: no SPF nor DMARC, which are that server's."""
    if not isinstance(decision, dict) or 'groups' not in decision:
        raise AnsibleFilterError('mail_dns_zone expects the result of mail_topology')
    g = decision['groups']
    host_domain = host_domain or domain
    missing = []
    names = _host_names(g, host_domain) + _tier_names(decision) if host_domain == domain else []
    records = _address_records(names, addresses, missing)
    for preference, name in mx_targets(decision, host_domain):
        records.append({'name': '@', 'type': 'MX', 'value': '%d %s.' % (preference, name)})
    if mta_sts:
        # The policy is served by the webmail hosts' web server.
        records.extend(_address_records([('mta-sts', host) for host in g['mail_webmail']], addresses, missing))
        records.append({'name': '_mta-sts', 'type': 'TXT', 'value': '"v=STSv1; id=%s"' % mta_sts['id']})
    if missing:
        raise AnsibleFilterError('mail_dns_zone: no address for host(s) %s (set mailstack_address or gather facts)'
                                 % ', '.join(sorted(set(missing))))
    if kind == 'local':
        records.append({'name': '@', 'type': 'TXT', 'value': '"v=spf1 mx -all"'})
        records.append({'name': '_dmarc', 'type': 'TXT',
                        'value': '"v=DMARC1; p=%s; rua=mailto:postmaster@%s"' % (dmarc_policy, domain)})
    if tls_rpt_rua:
        records.append({'name': '_smtp._tls', 'type': 'TXT', 'value': '"v=TLSRPTv1; rua=%s"' % tls_rpt_rua})
    return {
        'name': domain,
        'nameservers': ['%s.' % host_fqdn(host, host_domain) for host in g['mail_dns']],
        'records': records,
    }


def acme_delegations(zone, names, nameserver):
    """NS records that delegate _acme-challenge.<name>, for each name in the
    zone, to nameserver (FQDN, dot-terminated): the small dynamic zone there
    takes the ACME DNS-01 TXT records, so this zone stays a static file."""
    records = []
    for name in names:
        if name == zone:
            label = '_acme-challenge'
        elif name.endswith('.' + zone):
            label = '_acme-challenge.%s' % name[:-len(zone) - 1]
        else:
            continue
        records.append({'name': label, 'type': 'NS', 'value': nameserver})
    return records
