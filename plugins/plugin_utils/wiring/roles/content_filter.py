# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role content_filter: amavisd-new, ClamAV and SpamAssassin on the filter host."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import effective, listen, role_wiring, unique


def _reinject_port(host, site, inventory):
    """The one port the filtering mail servers take filtered mail back on, or None."""
    ports = sorted(set(inventory.get_int(mx, 'postfix_reinject_port') for mx in site.filtering_mx))
    if len(ports) > 1:
        inventory.errors.append('%s: the mail servers %s listen for filtered mail on different ports (%s): the '
                                'filter sends it back to one port, so set one postfix_reinject_port for all'
                                % (host.name, ', '.join(site.filtering_mx), ', '.join(str(p) for p in ports)))
        return None
    return ports[0] if ports else None


def content_filter_options(host, site, inventory):
    clients = []
    for mx in site.filtering_mx:
        clients.extend(['127.0.0.1'] if mx == host.name
                       else inventory.known(mx, 'a mail server that hands mail to the filter'))
    # '*': back to the address the message came from, so that every mail
    # server gets its own mail back.
    options = {'content_filter_clients': unique(clients), 'content_filter_reinject_host': '*'}
    port = _reinject_port(host, site, inventory)
    if port is not None:
        options['content_filter_reinject_port'] = port
    if host.fqdn:
        options['content_filter_hostname'] = host.fqdn
    return options


def content_filter_requires(host, site, inventory, options):
    # The mirror is a URL, no secret.
    if effective(host, inventory, options, 'content_filter_clamav_private_mirror'):
        return []
    return [('content_filter_clamav_signature_files', 'ClamAV needs signatures: files on the controller, or set '
             'content_filter_clamav_private_mirror (the role never uses the public mirrors)', 'non_empty')]


def content_filter_listens(host, site, inventory, options):
    # A mail server on the filter host itself hands mail over the loopback.
    peers = [mx for mx in site.filtering_mx if mx != host.name]
    if not peers:
        return []
    return [listen(effective(host, inventory, options, 'content_filter_port'), 'tcp',
                   'amavisd-new: mail to filter (SMTP)', peers)]


WIRING = role_wiring('content_filter', ('mail_filter',), content_filter_options,
                     address_options={'content_filter_clients': 'networks'}, reads=('postfix_reinject_port',),
                     requires=content_filter_requires, listens=content_filter_listens)
