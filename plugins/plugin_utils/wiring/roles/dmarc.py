# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role dmarc: OpenDMARC (and SPF checks) on the mail servers and the SMTP tier."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import role_wiring, unique


def _authserv_id(host, inventory, role):
    name = role + '_authserv_id'
    if inventory.is_set(host.name, name):
        return inventory.get(host.name, name)
    return host.fqdn or inventory.default(name)


def _check_authserv_ids(host, inventory):
    """OpenDMARC trusts only the Authentication-Results headers OpenDKIM wrote under its own authserv-id."""
    if 'dkim' not in host.roles:
        return
    dkim, dmarc = _authserv_id(host, inventory, 'dkim'), _authserv_id(host, inventory, 'dmarc')
    if str(dkim) != str(dmarc):
        inventory.errors.append("%s: dkim_authserv_id (%s) and dmarc_authserv_id (%s) differ: OpenDMARC trusts only "
                                "OpenDKIM's results under its own authserv-id" % (host.name, dkim, dmarc))


def dmarc_options(host, site, inventory):
    options = {}
    if host.fqdn:
        options['dmarc_authserv_id'] = host.fqdn
    _check_authserv_ids(host, inventory)
    # A backup MX relays mail it accepted from the internet: judged here by
    # its sender's SPF it would fail.
    relays = []
    for backup in site.groups['mail_backup_mx']:
        relays.extend(inventory.known(backup, 'a backup MX that relays to %s' % host.name))
    options['dmarc_ignore_hosts'] = list(inventory.default('dmarc_ignore_hosts')) + unique(relays)
    return options


WIRING = role_wiring('dmarc', ('mail_mx', 'mail_smtp'), dmarc_options,
                     address_options={'dmarc_ignore_hosts': 'networks'}, reads=('dkim_authserv_id',))
