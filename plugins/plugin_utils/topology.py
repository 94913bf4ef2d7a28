# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The topology decision: which topology an inventory's groups make, and
what is wrong with them (the filter mail_topology; see mail_topology.yml).
Plain Python on plain data, shared by the filters and the wiring."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.mailops.mailstack.plugins.plugin_utils.hostnames import host_fqdn

# Every inventory group the collection gives a meaning to.
MAIL_GROUPS = (
    'mail_mx', 'mail_store', 'mail_filter', 'mail_db', 'mail_db_replica',
    'mail_backup_mx', 'mail_nfs', 'mail_san', 'mail_smtp', 'mail_proxy', 'mail_webmail',
    'mail_dns',
)

TOPOLOGIES = ('single', 'backup_mx', 'nfs_shared', 'sharded')


def _hosts(groups, name):
    return list(groups.get(name) or [])


def _join(hosts):
    return ', '.join(sorted(hosts)) or 'none'


# A Galera cluster from this many 'mail_db' hosts (fewer than three have no
# quorum once one stops; garbd, the arbitrator, is not built).
GALERA_MIN_NODES = 3


def is_galera(groups):
    """The mail database is a Galera cluster of the 'mail_db' hosts."""
    return len(groups.get('mail_db') or []) >= GALERA_MIN_NODES


def _database_count(topology, g, errors):
    """'mail_db': one primary, or three or more Galera nodes; replicas go
    with a primary only."""
    db = g['mail_db']
    if 1 < len(db) < GALERA_MIN_NODES:
        errors.append("%s: group 'mail_db' has %d hosts (%s); give it one host (a primary, replicas in "
                      "'mail_db_replica') or %d or more (a Galera cluster: with two nodes, the one left when the "
                      "other stops has no quorum and serves nothing)" % (topology, len(db), _join(db), GALERA_MIN_NODES))
    if len(db) >= GALERA_MIN_NODES and g['mail_db_replica']:
        errors.append("%s: group 'mail_db_replica' (%s) beside %d 'mail_db' hosts (%s): those make a Galera cluster, "
                      "every node of which serves reads and writes; replicas go with one 'mail_db' primary (add "
                      "the hosts to 'mail_db' as nodes, or keep one 'mail_db' host)"
                      % (topology, _join(g['mail_db_replica']), len(db), _join(db)))


def _single(g, errors):
    mx, store = set(g['mail_mx']), set(g['mail_store'])
    if not mx:
        errors.append("single: group 'mail_mx' is empty; it needs the one mail server")
    if not store:
        errors.append("single: group 'mail_store' is empty; it needs the one mail server")
    if len(mx) > 1:
        errors.append("single: group 'mail_mx' has %d hosts (%s); a single-server topology has one "
                      "(several servers behind round robin need 'mail_nfs', a backup needs "
                      "'mail_backup_mx')" % (len(mx), _join(mx)))
    if mx and store and mx != store:
        errors.append("single: 'mail_mx' (%s) and 'mail_store' (%s) must be the same host"
                      % (_join(mx), _join(store)))
    if not g['mail_db']:
        errors.append("single: group 'mail_db' is empty; it needs the host of the mail database "
                      "(usually the mail server itself)")
    _database_count('single', g, errors)
    if g['mail_db_replica']:
        errors.append("single: group 'mail_db_replica' (%s) needs a topology with a replica: "
                      "add a 'mail_backup_mx' host or a 'mail_nfs' server" % _join(g['mail_db_replica']))


def _backup_mx(g, errors):
    backup, mx = set(g['mail_backup_mx']), set(g['mail_mx'])
    if not mx:
        errors.append("backup_mx: group 'mail_backup_mx' (%s) has no primary: group 'mail_mx' is empty"
                      % _join(backup))
    elif len(mx) > 1:
        errors.append("backup_mx: group 'mail_mx' has %d hosts (%s); the backup MX topology has one primary"
                      % (len(mx), _join(mx)))
    if mx and set(g['mail_store']) != mx:
        errors.append("backup_mx: 'mail_store' (%s) must be the primary in 'mail_mx' (%s)"
                      % (_join(g['mail_store']), _join(mx)))
    if not g['mail_db']:
        errors.append("backup_mx: group 'mail_db' is empty; the primary's database is replicated to the backup")
    _database_count('backup_mx', g, errors)
    no_replica = backup - set(g['mail_db_replica'])
    if no_replica:
        errors.append("backup_mx: %s must also be in 'mail_db_replica': the backup answers recipient lookups "
                      "from its own replica of the mail database while the primary is down" % _join(no_replica))
    extra = set(g['mail_db_replica']) - backup
    if extra:
        errors.append("backup_mx: 'mail_db_replica' (%s) holds hosts that are not backup MX hosts"
                      % _join(extra))
    both = backup & (mx | set(g['mail_store']))
    if both:
        errors.append("backup_mx: %s is in 'mail_backup_mx' and also in 'mail_mx' or 'mail_store'; "
                      "the backup must be another host" % _join(both))


def _nfs_shared(g, errors):
    mx, store, nfs = set(g['mail_mx']), set(g['mail_store']), set(g['mail_nfs'])
    if len(nfs) != 1:
        errors.append("nfs_shared: group 'mail_nfs' has %d hosts (%s); it needs exactly one NFS server"
                      % (len(nfs), _join(nfs)))
    if len(mx) < 2:
        errors.append("nfs_shared: group 'mail_mx' has %d host(s) (%s); shared storage serves two or more "
                      "mail servers behind round robin" % (len(mx), _join(mx)))
    if mx != store:
        errors.append("nfs_shared: 'mail_mx' (%s) and 'mail_store' (%s) must hold the same hosts"
                      % (_join(mx), _join(store)))
    if not g['mail_db']:
        errors.append("nfs_shared: group 'mail_db' is empty; it needs the database primary")
    _database_count('nfs_shared', g, errors)
    if nfs & mx:
        errors.append("nfs_shared: %s is both the NFS server and a mail server; use another host"
                      % _join(nfs & mx))
    if g['mail_backup_mx']:
        errors.append("nfs_shared: 'mail_backup_mx' (%s) conflicts with 'mail_nfs'; pick one topology"
                      % _join(g['mail_backup_mx']))
    # The NAS/SAN variant: the NFS server's store is a block device of an
    # iSCSI target on another host.
    san = set(g['mail_san'])
    if len(san) > 1:
        errors.append("nfs_shared: group 'mail_san' has %d hosts (%s); the NFS server's store is one LUN of "
                      "one iSCSI target" % (len(san), _join(san)))
    if san & (nfs | mx):
        errors.append("nfs_shared: %s is in 'mail_san' and is also the NFS server or a mail server; the "
                      "iSCSI target is the storage behind the NFS server, another host" % _join(san & (nfs | mx)))


def _sharded(g, errors):
    for name in ('mail_smtp', 'mail_proxy', 'mail_store', 'mail_db'):
        if not g[name]:
            errors.append("sharded: group '%s' is empty; the sharded topology needs it" % name)
    _database_count('sharded', g, errors)
    for name in ('mail_mx', 'mail_backup_mx', 'mail_nfs'):
        if g[name]:
            errors.append("sharded: group '%s' (%s) conflicts with 'mail_smtp'/'mail_proxy': the sharded "
                          "topology receives mail on the 'mail_smtp' tier" % (name, _join(g[name])))
    tiers = set(g['mail_smtp']) | set(g['mail_proxy']) | set(g['mail_webmail'])
    if tiers & set(g['mail_store']):
        errors.append("sharded: %s is both a front tier ('mail_smtp', 'mail_proxy' or 'mail_webmail') and a "
                      "mailbox shard ('mail_store'); shards are separate hosts" % _join(tiers & set(g['mail_store'])))


def decide_topology(groups):
    """Return {'topology': name or None, 'errors': [...], 'groups': {...}}."""
    if not isinstance(groups, dict):
        raise AnsibleFilterError('mail_topology expects the groups mapping, got %s' % type(groups).__name__)
    g = dict((name, _hosts(groups, name)) for name in MAIL_GROUPS)
    errors = []
    if g['mail_smtp'] or g['mail_proxy']:
        topology = 'sharded'
        _sharded(g, errors)
    elif g['mail_nfs']:
        topology = 'nfs_shared'
        _nfs_shared(g, errors)
    elif g['mail_backup_mx']:
        topology = 'backup_mx'
        _backup_mx(g, errors)
    elif g['mail_mx'] or g['mail_store']:
        topology = 'single'
        _single(g, errors)
    else:
        topology = None
        errors.append("no topology: the inventory has none of the groups that define one "
                      "('mail_mx' and 'mail_store' for single, plus 'mail_backup_mx' for backup_mx, "
                      "'mail_nfs' for nfs_shared, 'mail_smtp' and 'mail_proxy' for sharded)")
    if g['mail_san'] and topology != 'nfs_shared':
        errors.append("group 'mail_san' (%s) holds the iSCSI target behind the NFS server; only the nfs_shared "
                      "topology ('mail_nfs') has one" % _join(g['mail_san']))
    if len(g['mail_filter']) > 1:
        # Postfix's content_filter names one next hop; several filter hosts
        # behind one name are not built yet.
        errors.append("group 'mail_filter' has %d hosts (%s); every mail server hands its mail to one "
                      "content filter host" % (len(g['mail_filter']), _join(g['mail_filter'])))
    return {'topology': topology, 'errors': errors, 'groups': g}


def mx_targets(decision, domain):
    """(preference, name) of the domain's MX records for the topology."""
    g = decision['groups']
    if decision['topology'] == 'nfs_shared':
        return [(5, 'mail.%s' % domain)]
    if decision['topology'] == 'sharded':
        return [(5, 'smtp.%s' % domain)]
    return ([(5, host_fqdn(h, domain)) for h in g['mail_mx']]
            + [(10, host_fqdn(h, domain)) for h in g['mail_backup_mx']])
