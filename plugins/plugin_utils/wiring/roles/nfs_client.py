# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role nfs_client: the nfs_shared topology's store, mounted on the mail
servers before Postfix and Dovecot start (nothing in the other topologies)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import role_wiring


def nfs_client_options(host, site, inventory):
    if not site.nfs:
        return {}
    export = inventory.get(site.nfs_host, 'nfs_server_export')
    address = inventory.reach(site.nfs_host, 'the NFS server of %s' % host.name)
    server = '[%s]' % address if ':' in address else address
    return {
        'nfs_client_mounts': [{'src': '%s:%s' % (server, export), 'path': export}],
        # Started only once the store is mounted, stopped with it.
        'nfs_client_required_by': ['dovecot.service'] + (
            ['postfix@-.service'] if host.name in site.groups['mail_mx'] else []),
    }


WIRING = role_wiring('nfs_client', ('mail_store',), nfs_client_options, reads=('nfs_server_export',))
