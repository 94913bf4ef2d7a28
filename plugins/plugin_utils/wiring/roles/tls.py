# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role tls: certificates for every host that serves mail protocols, and for
the database servers, which serve their remote readers and replicas over TLS."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import (
    INTERNET, effective, listen, role_wiring, unique)
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.site import host_facts, webmail_names

GROUPS = ('mail_mx', 'mail_store', 'mail_webmail', 'mail_smtp', 'mail_proxy', 'mail_backup_mx', 'mail_db',
          'mail_db_replica')

# Where a host with tls_source=acme that runs the web server answers HTTP-01
# challenges: the tls role's ACME client writes there, nginx serves it on
# port 80 (webmail_acme_webroot). Hosts without it answer with the client's
# own listener.
ACME_WEBROOT = '/var/www/acme'

# The names a tier's hosts share (round robin), by the group that shares them.
SHARED_NAMES = (('smtp', 'mail_smtp'), ('imap', 'mail_proxy'), ('mta-sts', 'mail_webmail'), ('mail', 'mail_mx'),
                ('webmail', 'mail_webmail'))


def _names(host, site, inventory, acme):
    """The service names clients use for a tier (round robin) are in the
    certificate of each host behind them. An ACME certificate carries only
    names the CA can check in the DNS: not the inventory's short name, nor
    an address."""
    name, groups, domain = host.name, site.groups, host.domain
    names = ([] if acme else [name]) + ([host.fqdn] if host.fqdn else [])
    if host.fqdn and name in groups['mail_smtp']:
        names.append('smtp.%s' % domain)
    if host.fqdn and name in groups['mail_proxy']:
        names.extend(['imap.%s' % domain, 'pop3.%s' % domain])
    if host.fqdn and site.nfs and name in groups['mail_mx']:
        # The round-robin name of the servers, for mail and for clients.
        names.append('mail.%s' % domain)
    if host.fqdn and name in groups['mail_webmail']:
        names.extend(webmail_names(domain))
    if name in groups['mail_webmail']:
        # Each domain's MTA-STS policy is served under its own name.
        names.extend('mta-sts.%s' % each for each in host.mta_sts)
    if site.db_server_remote(name):
        # The address its readers and replicas connect to, which they
        # verify against the certificate.
        names.append(inventory.reach(name, 'a mail database server, read over TLS'))
    if site.db_reads_own_with_tls(name):
        # Its own Postfix and Dovecot reach it by the socket with the TLS
        # settings of their whole list: the client then checks this name.
        names.append('localhost')
    return unique(names)


def _check_acme(host, site, inventory):
    if not host.fqdn:
        inventory.errors.append('%s: tls_source=acme needs mailstack_domain: the certificate names %s.<domain>'
                                % (host.name, host.name))
    if site.db_server_remote(host.name):
        inventory.errors.append('%s: tls_source=acme on a database host whose database is read or replicated over '
                                'the network: its readers connect by address, which an ACME certificate does not '
                                'name; give it lab_ca or provided' % host.name)


def _shared_names(host, site, names):
    """(name, group) for each of the host's names that several hosts of its
    tier share (DNS round robin)."""
    shared = [('%s.%s' % (prefix, host.domain), group) for prefix, group in SHARED_NAMES]
    shared.extend(('mta-sts.%s' % domain, 'mail_webmail') for domain in host.mta_sts)
    return [(name, group) for name, group in shared if name in names and len(site.groups[group]) > 1]


def acme_challenge(host, site, inventory, names):
    """HTTP-01 asks the name's address: a name shared by several hosts (round
    robin) reaches one of them, not always the one asking; such a host proves
    its names by DNS-01 (a TXT record each host adds and removes itself).
    The inventory's tls_acme_challenge wins."""
    if inventory.is_set(host.name, 'tls_acme_challenge'):
        return inventory.get(host.name, 'tls_acme_challenge')
    return 'dns-01' if _shared_names(host, site, names) else 'http-01'


def _check_acme_names(host, site, inventory, names, challenge):
    if challenge != 'http-01':
        return
    for name, group in _shared_names(host, site, names):
        inventory.errors.append('%s: tls_source=acme with tls_acme_challenge=http-01 cannot certify %s, which %s '
                                'share: the ACME server checks the name at one of their addresses; use '
                                'tls_acme_challenge: dns-01 (with tls_acme_tsig_secret) or provided certificates'
                                % (host.name, name, ', '.join(site.groups[group])))


def dns01_update_target(host, site, inventory):
    """The DNS host that takes host's DNS-01 updates: the first mail_dns
    host, unless the inventory names its own server (tls_acme_dns_server);
    None then, or when there is no mail_dns host."""
    if inventory.is_set(host.name, 'tls_acme_dns_server') or not site.groups['mail_dns']:
        return None
    return site.groups['mail_dns'][0]


def _dns01_options(host, site, inventory):
    target = dns01_update_target(host, site, inventory)
    if target is None:
        if not inventory.is_set(host.name, 'tls_acme_dns_server'):
            inventory.errors.append('%s: tls_acme_challenge=dns-01 needs tls_acme_dns_server (the address of the DNS '
                                    'server that takes its RFC 2136 updates): the inventory has no mail_dns host'
                                    % host.name)
        return {}
    # The update target answers the ACME server itself (no secondary to
    # wait for): certbot need not wait its default 60 s.
    return {'tls_acme_dns_server': inventory.reach(target, 'the DNS server that takes the ACME challenges of %s'
                                                   % host.name),
            'tls_acme_dns_propagation_seconds': 5}


def dns01_hosts(site, inventory):
    """[(host, names)]: the hosts whose ACME challenges the first mail_dns
    host takes (tls_source=acme, DNS-01, no tls_acme_dns_server of their
    own), each with the names its certificate carries."""
    found = []
    for name in unique(h for group in GROUPS for h in site.groups.get(group, ())):
        if not site.is_acme(name):
            continue
        host = host_facts(name, (), site, name in site.groups['mail_webmail'])
        names = _names(host, site, inventory, True)
        if (acme_challenge(host, site, inventory, names) == 'dns-01'
                and dns01_update_target(host, site, inventory) is not None):
            # The names the inventory gives win over the wiring's.
            found.append((name, list(inventory.get(name, 'tls_names')) if inventory.is_set(name, 'tls_names')
                          else names))
    return found


def tls_options(host, site, inventory):
    options = {}
    acme = site.is_acme(host.name)
    if acme:
        _check_acme(host, site, inventory)
    names = _names(host, site, inventory, acme)
    if len(names) > 1 or acme:
        options['tls_names'] = names
    if acme:
        challenge = acme_challenge(host, site, inventory, names)
        _check_acme_names(host, site, inventory, names, challenge)
        options['tls_acme_challenge'] = challenge
        if challenge == 'dns-01':
            options.update(_dns01_options(host, site, inventory))
        elif host.name in site.groups['mail_webmail']:
            options['tls_acme_webroot'] = inventory.optional(host.name, 'webmail_acme_webroot') or ACME_WEBROOT
    # The lab CA stays on one managed host, the same in every run.
    options['tls_ca_host'] = next(h for group in GROUPS for h in site.groups.get(group, ()))
    return options


def tls_requires(host, site, inventory, options):
    # No default: the inventory chooses (its argument spec requires it).
    source = inventory.optional(host.name, 'tls_source')
    if source == 'acme' and effective(host, inventory, options, 'tls_acme_challenge') == 'dns-01':
        return [('tls_acme_tsig_secret', 'tls_acme_challenge=dns-01 signs its DNS updates (RFC 2136) with this TSIG '
                 'key', 'non_empty')]
    if source != 'provided':
        return []
    return [('tls_certificate', 'tls_source=provided installs this certificate (PEM)', 'pem certificate'),
            ('tls_private_key', "tls_source=provided installs this certificate's key (PEM)", 'pem private key')]


def tls_listens(host, site, inventory, options):
    # HTTP-01 with certbot's own listener (a web server's host serves the
    # challenge itself: webmail's port 80).
    if (site.is_acme(host.name) and effective(host, inventory, options, 'tls_acme_challenge') == 'http-01'
            and not effective(host, inventory, options, 'tls_acme_webroot')):
        return [listen(80, 'tcp', "HTTP: the ACME server checks the host's names (certbot, while it issues or "
                       'renews)', [INTERNET])]
    return []


WIRING = role_wiring('tls', GROUPS, tls_options, requires=tls_requires, listens=tls_listens)
