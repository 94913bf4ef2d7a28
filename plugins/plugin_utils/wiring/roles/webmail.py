# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role webmail: Roundcube, and the MTA-STS policy served by its web server."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import INTERNET, listen, role_wiring


def webmail_options(host, site, inventory):
    options = {}
    # By the first name in their certificates; in the sharded topology the
    # proxy and SMTP tiers, never a shard.
    imap_hosts = site.groups['mail_proxy'] if site.sharded else site.groups['mail_store']
    if imap_hosts:
        options['webmail_imap_host'] = site.cert_name(imap_hosts[0])
    if site.filtering_mx:
        options['webmail_smtp_host'] = site.cert_name(site.filtering_mx[0])
    if host.mta_sts:
        # Each domain's policy under its own name.
        options['webmail_mta_sts_policies'] = [{'server_name': 'mta-sts.%s' % domain, 'policy': policy['text']}
                                               for domain, policy in host.mta_sts.items()]
    return options


def webmail_requires(host, site, inventory, options):
    return [('webmail_des_key', "Roundcube's session encryption key", 'length 24')]


def webmail_listens(host, site, inventory, options):
    https = 'HTTPS: Roundcube' + (', the MTA-STS policy' if host.mta_sts else '')
    http = 'HTTP: redirects to HTTPS' + ('; ACME HTTP-01 challenges' if site.is_acme(host.name) else '')
    return [listen(80, 'tcp', http, [INTERNET]),
            listen(443, 'tcp', https, [INTERNET])]


WIRING = role_wiring('webmail', ('mail_webmail',), webmail_options, publishes_mta_sts=True,
                     requires=webmail_requires, listens=webmail_listens)
