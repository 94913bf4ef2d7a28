# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role webmail: Roundcube (its database on the mail database's primary,
shared by every webmail host), and the MTA-STS policy served by its web server."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import INTERNET, listen, role_wiring, unique
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.site import SYSTEM_CA_BUNDLE, webmail_names


def public_name(site, tier_host, shared):
    """The name a tier's certificates carry for clients: the name the tier
    shares in the sharded (shared: imap, smtp) and nfs_shared (mail)
    topologies, else the server's FQDN; without a mail domain its
    certificate's first name."""
    fqdn = site.fqdn(tier_host)
    if fqdn is None:
        return site.cert_name(tier_host)
    domain = site.primary_domain(tier_host).rstrip('.')
    if site.sharded:
        return '%s.%s' % (shared, domain)
    return 'mail.%s' % domain if site.nfs else fqdn


def _servers(site, inventory):
    """Roundcube connects to the first server of each tier by its address and
    verifies the certificate against the tier's public name (no dependence on
    the webmail host's resolver)."""
    options = {}
    imap_hosts = site.groups['mail_proxy'] if site.sharded else site.groups['mail_store']
    for kind, hosts, shared in (('imap', imap_hosts, 'imap'), ('smtp', site.filtering_mx, 'smtp')):
        if hosts:
            options['webmail_%s_host' % kind] = public_name(site, hosts[0], shared)
            options['webmail_%s_address' % kind] = inventory.reach(hosts[0], "Roundcube's %s server" % kind.upper())
    return options


def _database(host, site, inventory):
    """Roundcube's database on the mail database's primary (with Galera, a
    node: site.webmail_db_server): by its socket on that server itself, else
    over TLS verified against the site's CA."""
    primary = site.webmail_db_server(host.name)
    if primary is None:
        return {}
    local = primary == host.name
    return {
        'webmail_db_host': 'localhost' if local else inventory.reach(primary, "Roundcube's database"),
        'webmail_db_port': inventory.get_int(primary, 'mail_database_port'),
        'webmail_db_name': inventory.get(primary, 'mail_database_roundcube_name'),
        'webmail_db_user': inventory.get(primary, 'mail_database_roundcube_user'),
        'webmail_db_ca_file': SYSTEM_CA_BUNDLE if site.primary_tls and not local else '',
    }


def webmail_options(host, site, inventory):
    options = _servers(site, inventory)
    options.update(_database(host, site, inventory))
    options['webmail_server_aliases'] = unique([host.fqdn] + webmail_names(host.domain))
    if host.mta_sts:
        # Each domain's policy under its own name.
        options['webmail_mta_sts_policies'] = [{'server_name': 'mta-sts.%s' % domain, 'policy': policy['text']}
                                               for domain, policy in host.mta_sts.items()]
    return options


def webmail_requires(host, site, inventory, options):
    return [('webmail_des_key', "Roundcube's session encryption key", 'length 24'),
            ('webmail_db_password', "Roundcube's account in its database on the mail database primary (site.yml "
             "copies the host's mail_database_roundcube_password)", 'non_empty')]


def webmail_listens(host, site, inventory, options):
    https = 'HTTPS: Roundcube' + (', the MTA-STS policy' if host.mta_sts else '')
    http = 'HTTP: redirects to HTTPS' + ('; ACME HTTP-01 challenges' if site.is_acme(host.name) else '')
    return [listen(80, 'tcp', http, [INTERNET]),
            listen(443, 'tcp', https, [INTERNET])]


WIRING = role_wiring('webmail', ('mail_webmail',), webmail_options, publishes_mta_sts=True,
                     copies=(('webmail_db_password', 'mail_database_roundcube_password'),),
                     reads=('mail_database_port', 'mail_database_roundcube_name', 'mail_database_roundcube_user'),
                     requires=webmail_requires, listens=webmail_listens)
