# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role mail_database: the primary of the mail database, then its replicas
(two plays in site.yml: a replica starts from a snapshot of the finished
primary); or, with three or more 'mail_db' hosts, the nodes of a Galera
cluster (mail_database_mode galera), whose accounts are written once and
replicate: every node gets the same account hosts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.domains import database_domains
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import effective, listen, role_wiring, unique
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.site import SYSTEM_CA_BUNDLE

LOCAL = ['localhost', '127.0.0.1']

# Who reads a database server over the network, by service: the hosts of
# these groups other than the server's own (each lists every server:
# site.db_hosts_for).
READERS = (('postfix', ('mail_mx', 'mail_backup_mx', 'mail_smtp')), ('dovecot', ('mail_store', 'mail_proxy')))


def _readers(site, inventory, service_groups, server):
    """The addresses of the readers other than server's host (None: every
    reader, as a Galera account serves every node)."""
    readers = []
    for other in sorted(set(h for group in service_groups for h in site.groups[group])):
        if other != server:
            readers.extend(inventory.known(other, 'a reader of the database'))
    return unique(readers)


def _reader_accounts(site, inventory, server):
    """The hosts of the read-only accounts of server: loopback, and every
    address of every other host that reads the database."""
    return dict(('mail_database_%s_hosts' % service, LOCAL + _readers(site, inventory, groups, server))
                for service, groups in READERS)


def _mailbox_servers(site, inventory):
    """Each shard (each server of the NFS store) registered with the address
    the tiers reach it at."""
    return {'mail_database_mailbox_hosts': [
        {'name': s, 'address': inventory.reach(s, 'the mailbox server the tiers deliver to')}
        for s in site.groups['mail_store']]}


def _mover_hosts(site, inventory):
    """Where the moves' account may log in from: mailbox_move runs on the
    shards (the target, and the source for the cleanup); a shard that is a
    database host reaches it on loopback. The shards get no other write
    account (the provisioning account stays on the database hosts)."""
    hosts = []
    for shard in site.groups['mail_store']:
        if shard in site.db_hosts:
            hosts.extend(LOCAL)
        if shard not in site.db_hosts or site.galera:
            # With Galera a shard that is a node writes through the other
            # nodes too (its list: its own socket, then every node).
            hosts.extend(inventory.known(shard, 'a shard that moves mailboxes'))
    return unique(hosts)


def _primary_options(site, inventory):
    """Who reads the primary over the network: the replicas, and Postfix and
    Dovecot on every other host."""
    options = {
        'mail_database_bind_address': '*' if site.primary_remote else '127.0.0.1',
        'mail_database_tls': site.primary_remote,
    }
    options.update(_reader_accounts(site, inventory, site.primary_db))
    if site.sharded or site.nfs:
        options.update(_mailbox_servers(site, inventory))
    if site.sharded:
        options['mail_database_mover_hosts'] = _mover_hosts(site, inventory)
    if site.groups['mail_webmail']:
        # Roundcube's database, shared by the webmail hosts.
        options['mail_database_roundcube_hosts'] = unique(
            [a for h in site.groups['mail_webmail'] for a in (
                LOCAL if h == site.webmail_db_server(h) else inventory.known(h, "a webmail host (Roundcube's database)"))])
    if site.replicas:
        replication = []
        for other in site.replicas:
            replication.extend(inventory.known(other, 'a replica of the database'))
        options['mail_database_replication_hosts'] = unique(replication)
    return options


def _replica_options(host, site, inventory):
    """A replica answers the lookups of every reader while the primary is
    down: it serves them as the primary does, over TLS when the primary does
    (one TLS setting covers a reader's whole list)."""
    remote = site.replica_remote(host.name)
    options = {'mail_database_bind_address': '*' if remote else '127.0.0.1',
               'mail_database_tls': site.primary_tls and remote}
    options.update(_reader_accounts(site, inventory, host.name) if remote else
                   {'mail_database_postfix_hosts': list(LOCAL), 'mail_database_dovecot_hosts': list(LOCAL)})
    if remote and inventory.is_set(host.name, 'mail_database_tls') and \
            bool(inventory.get(host.name, 'mail_database_tls')) != site.primary_tls:
        inventory.errors.append('%s: mail_database_tls is %s but the primary %s serves %s: the readers list both '
                                'servers with one TLS setting (set it alike on both)' % (
                                    host.name, bool(inventory.get(host.name, 'mail_database_tls')),
                                    site.primary_db, 'TLS' if site.primary_tls else 'no TLS'))
    if site.sharded:
        # mailbox_move waits on every replica until it has applied the flip
        # (replica_wait.py): the account, without any right there.
        options['mail_database_mover_hosts'] = _mover_hosts(site, inventory)
    if site.primary_db:
        options['mail_database_primary'] = inventory.reach(site.primary_db, 'the primary that %s replicates' % host.name)
        options['mail_database_primary_ca_file'] = SYSTEM_CA_BUNDLE if site.primary_tls else ''
    return options


def _galera_options(host, site, inventory):
    """A node of the Galera cluster: every node's address (inventory order),
    its own, TLS (readers and the group), and the accounts of every reader
    (written once on the first Synced node; they replicate)."""
    options = {
        'mail_database_mode': 'galera',
        'mail_database_server_id': site.galera_nodes.index(host.name) + 1,
        'mail_database_binlog': False,
        'mail_database_bind_address': '*',
        'mail_database_tls': True,
        # Inventory names: the role reads each node's state (galera_node,
        # delegated) before it starts any, also under --limit.
        'mail_database_galera_hosts': list(site.galera_nodes),
        'mail_database_galera_nodes': [inventory.reach(n, 'a node of the Galera cluster') for n in site.galera_nodes],
        'mail_database_galera_node_address': inventory.reach(host.name, 'a node of the Galera cluster'),
    }
    options.update(_reader_accounts(site, inventory, None))
    options.update(_mailbox_servers(site, inventory) if site.sharded or site.nfs else {})
    if site.sharded:
        options['mail_database_mover_hosts'] = _mover_hosts(site, inventory)
    if site.groups['mail_webmail']:
        # A webmail host that is a node uses its own (socket); the others
        # one node each (site.webmail_db_server).
        options['mail_database_roundcube_hosts'] = unique(
            [a for h in site.groups['mail_webmail'] for a in (
                LOCAL if h in site.galera_nodes else inventory.known(h, "a webmail host (Roundcube's database)"))])
    options['mail_database_domains'] = database_domains(host.domains)
    return options


def mail_database_options(host, site, inventory):
    if site.galera:
        return _galera_options(host, site, inventory)
    replica = host.name in site.replicas
    options = {
        'mail_database_mode': 'replica' if replica else 'primary',
        'mail_database_server_id': site.db_hosts.index(host.name) + 1,
        'mail_database_binlog': bool(site.replicas),
    }
    options.update(_replica_options(host, site, inventory) if replica else _primary_options(site, inventory))
    if not replica:
        # The inventory's mail domains, made and kept in the database (site.yml's play "Mail domains").
        options['mail_database_domains'] = database_domains(host.domains)
    return options


def mail_database_requires(host, site, inventory, options):
    required = [('mail_database_postfix_password', "Postfix's account in the mail database", 'non_empty'),
                ('mail_database_dovecot_password', "Dovecot's account in the mail database", 'non_empty')]
    if site.galera:
        # Any node may be the one that writes the accounts.
        required.insert(0, ('mail_database_admin_password', 'the provisioning account of the cluster', 'non_empty'))
        if site.groups['mail_webmail']:
            required.append(('mail_database_roundcube_password', "Roundcube's account on its database", 'non_empty'))
        if site.sharded:
            required.append(('mail_database_mover_password', "the moves' account, for the shards (%s)"
                             % ', '.join(site.groups['mail_store']), 'non_empty'))
        return required
    if host.name in site.replicas:
        required.append(('mail_database_replication_password', 'the replica logs in to the primary with it',
                         'non_empty'))
        if site.sharded:
            required.append(('mail_database_mover_password', "the moves' account, which waits here until the "
                             'replica has applied a flip', 'non_empty'))
    else:
        required.insert(0, ('mail_database_admin_password', 'the provisioning account of the primary', 'non_empty'))
        if site.groups['mail_webmail']:
            required.append(('mail_database_roundcube_password', "Roundcube's account on its database, for the "
                             'webmail hosts (%s)' % ', '.join(site.groups['mail_webmail']), 'non_empty'))
        if site.sharded:
            required.append(('mail_database_mover_password', "the moves' account, for the shards (%s)"
                             % ', '.join(site.groups['mail_store']), 'non_empty'))
        if site.replicas:
            required.append(('mail_database_replication_password', 'the replicas (%s) log in with it'
                             % ', '.join(site.replicas), 'non_empty'))
    return required


def database_peers(site, server=None):
    """Who connects to server (default: the primary): every reader of READERS
    but the server's own host (a shard's mailbox moves use the same host),
    and, to the primary, the replicas."""
    server = server or site.primary_db
    readers = sorted(set(h for _service, groups in READERS for group in groups for h in site.groups[group]))
    replicas = [r for r in site.replicas if r not in readers] if server == site.primary_db else []
    return [h for h in readers if h != server] + replicas


# Galera's ports (the provider's defaults): the group, IST, SST.
GALERA_PORTS = ((4567, 'group communication'), (4568, 'incremental state transfer (IST)'),
                (4444, 'state snapshot transfer (SST, mariabackup over TLS)'))


def mail_database_listens(host, site, inventory, options):
    if host.name in site.galera_nodes:
        others = [n for n in site.galera_nodes if n != host.name]
        sql = listen(effective(host, inventory, options, 'mail_database_port'), 'tcp',
                     'MariaDB over TLS: the mail database (Postfix and Dovecot lookups, provisioning%s)'
                     % (', mailbox moves' if site.sharded else ''), database_peers(site, host.name) + others)
        return [sql] + [listen(port, 'tcp', 'Galera over TLS: %s between the nodes' % what, others)
                        for port, what in GALERA_PORTS]
    if host.name == site.primary_db and site.primary_remote:
        uses = ['Postfix and Dovecot lookups'] + (['mailbox moves'] if site.sharded else []) + (
            ['replication'] if site.replicas else [])
    elif host.name in site.replicas and site.replica_remote(host.name):
        uses = ['Postfix and Dovecot lookups of the other hosts']
    else:
        return []
    return [listen(effective(host, inventory, options, 'mail_database_port'), 'tcp',
                   'MariaDB%s: the mail database (%s)' % (
                       ' over TLS' if effective(host, inventory, options, 'mail_database_tls') else '',
                       ', '.join(uses)), database_peers(site, host.name))]


WIRING = role_wiring('mail_database', ('mail_db', 'mail_db_replica'), mail_database_options,
                     requires=mail_database_requires, listens=mail_database_listens)
