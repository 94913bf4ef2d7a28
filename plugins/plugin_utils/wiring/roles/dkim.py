# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role dkim: OpenDKIM on the mail servers and the SMTP tier, a key per
domain and selector. Its keys are published by the DNS play (playbooks/site.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.domains import local_domains
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import role_wiring

GROUPS = ('mail_mx', 'mail_smtp')


def _signers(site):
    """The hosts that sign (a backup MX relays, it does not sign)."""
    return sorted(set(h for group in GROUPS for h in site.groups[group]) - set(site.groups['mail_backup_mx']))


def _domain_entry(host, site, inventory, domain):
    """A domain as dkim_domains takes it: its name, or with its own selector
    (where '{host}' is this host's name) {'name', 'selector'}."""
    if domain.dkim_selector is None:
        return domain.name
    signers = _signers(site)
    if '{host}' not in domain.dkim_selector and len(signers) > 1:
        inventory.errors.append("mailstack_domains (%s): dkim_selector %r would be the same on %s, which all sign its "
                                "mail with keys of their own: put '{host}' in it"
                                % (domain.name, domain.dkim_selector, ', '.join(signers)))
    return {'name': domain.name, 'selector': domain.dkim_selector.replace('{host}', host.name.split('.')[0])}


def dkim_options(host, site, inventory):
    options = {}
    # Each local domain signed with a key of its own; a relay domain's mail
    # is sent by its own server.
    if host.domains:
        options['dkim_domains'] = [_domain_entry(host, site, inventory, d) for d in local_domains(host.domains)]
    # OpenDKIM writes Authentication-Results headers under the host's mail name.
    if host.fqdn:
        options['dkim_authserv_id'] = host.fqdn
    return options


def dkim_requires(host, site, inventory, options):
    return [('mailstack_domain', 'OpenDKIM signs the mail of the mail domains (mailstack_domain, or the first of '
             'mailstack_domains): without it, it signs nothing', 'non_empty')]


WIRING = role_wiring('dkim', GROUPS, dkim_options, requires=dkim_requires)
