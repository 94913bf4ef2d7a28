# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role iscsi_target: nfs_shared, NAS/SAN variant: the iSCSI target whose LUN
holds the NFS server's store."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import listen, role_wiring, unique


def iscsi_target_options(host, site, inventory):
    if not site.nfs_host:
        return {}
    # Only the NFS server may log in.
    return {'iscsi_target_initiators': unique(inventory.known(site.nfs_host,
                                                              'the NFS server that logs into %s' % host.name))}


def iscsi_target_requires(host, site, inventory, options):
    return [('iscsi_target_chap_password', 'the NFS server logs in to the target with it (CHAP: 12 to 64 letters, '
             'digits and ._~+=@%^,:/-)', 'chap')]


def iscsi_target_listens(host, site, inventory, options):
    if not site.nfs_host:
        return []
    return [listen(3260, 'tcp', "iSCSI: the LUN of the NFS server's store", [site.nfs_host])]


WIRING = role_wiring('iscsi_target', ('mail_san',), iscsi_target_options,
                     address_options={'iscsi_target_initiators': 'networks'}, requires=iscsi_target_requires,
                     listens=iscsi_target_listens)
