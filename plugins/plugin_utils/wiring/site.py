# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The facts of the whole site that the roles' wiring shares, computed once
(Site), and those of one host (HostFacts)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import namedtuple

from ansible.errors import AnsibleFilterError

from ansible_collections.mailops.mailstack.plugins.plugin_utils.hostnames import host_fqdn, host_name_error
from ansible_collections.mailops.mailstack.plugins.plugin_utils.mta_sts import mta_sts_policy
from ansible_collections.mailops.mailstack.plugins.plugin_utils.topology import is_galera
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.domains import domains

# The clients of a database served over TLS verify it against the host's
# trust store (the tls role adds the lab CA or the CA the inventory gives).
SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'

# The groups whose hosts read the mail database (Postfix, Dovecot; Roundcube
# keeps its own database on the same server).
DATABASE_READER_GROUPS = ('mail_mx', 'mail_smtp', 'mail_store', 'mail_proxy', 'mail_webmail')
# The groups whose hosts look users up (Postfix, Dovecot): each lists every
# server of the database, replicas too (db_hosts_for).
LOOKUP_GROUPS = ('mail_mx', 'mail_backup_mx', 'mail_smtp', 'mail_store', 'mail_proxy')


def webmail_names(domain):
    """The public names of the webmail of the (primary) mail domain: in the
    webmail hosts' certificates and nginx's server_name."""
    return ['webmail.%s' % domain] if domain else []


def _first(hosts):
    return hosts[0] if hosts else None


class Site(object):
    """The topology and what every role's wiring derives from it: groups (each
    mail group's hosts), the database primary and replicas, whether the
    primary is read over the network and serves TLS, the filter host, the
    mail servers that hand mail to it, the NFS and iSCSI hosts."""

    def __init__(self, groups, topology, inventory):
        self.groups = groups
        self.topology = topology
        self.decision = {'topology': topology, 'groups': groups}
        self.inventory = inventory
        self.mail_hosts = sorted(set(h for members in groups.values() for h in members))
        self.db_hosts = list(groups['mail_db']) + list(groups['mail_db_replica'])
        self.primary_db = _first(groups['mail_db'])
        self.replicas = list(groups['mail_db_replica'])
        # Three or more 'mail_db' hosts: a Galera cluster, every node of
        # which takes reads and writes (primary_db is then its first node,
        # the one that bootstraps a new cluster: it holds the data of the
        # primary being converted).
        self.galera = is_galera(groups)
        self.galera_nodes = list(groups['mail_db']) if self.galera else []
        self.filter_host = _first(groups['mail_filter'])
        self.filtering_mx = [h for h in groups['mail_mx'] if h not in groups['mail_backup_mx']] + list(groups['mail_smtp'])
        self.sharded = topology == 'sharded'
        # Several servers on one NFS store, each user pinned to one of them by
        # the same mailbox_host table as the shards.
        self.nfs = topology == 'nfs_shared'
        self.nfs_host = _first(groups['mail_nfs']) if self.nfs else None
        self.san_host = _first(groups['mail_san']) if self.nfs else None
        # The primary serves TLS, and requires it of every remote account,
        # when another host reads it or replicates it.
        self.primary_remote = self.primary_db is not None and (self.galera or bool(self.replicas) or any(
            h not in self.db_hosts for group in DATABASE_READER_GROUPS for h in groups[group]))
        if self.primary_db is not None and inventory.is_set(self.primary_db, 'mail_database_tls'):
            self.primary_tls = bool(inventory.get(self.primary_db, 'mail_database_tls'))
        else:
            self.primary_tls = self.primary_remote
        self._domains = {}

    def domains(self, host):
        """The site's mail domains as host sees them (wiring/domains.py), the primary first."""
        if host not in self._domains:
            self._domains[host] = domains(self.inventory, host)
        return self._domains[host]

    def primary_domain(self, host):
        host_domains = self.domains(host)
        return host_domains[0].name if host_domains else None

    def db_hosts_for(self, host):
        """The database servers host's readers (Postfix, Dovecot, the
        modules of the playbooks) list, in order: its own server first
        (localhost: Postfix tries the socket before any TCP host), then the
        primary, then the replicas: lookups go on while the primary is down;
        with Galera every node, in the inventory's order (the modules write
        through the first that takes writes, so all meet on one node while
        it lives)."""
        if self.primary_db is None:
            return ['localhost']
        hosts = ['localhost'] if host in self.db_hosts else []
        for server in list(self.groups['mail_db']) + self.replicas:
            if server != host:
                hosts.append(self.inventory.reach(server, 'a mail database server read by %s' % host))
        return hosts

    def db_ca_file(self, host):
        """Verify the servers' certificates when host reads one over the
        network. One setting covers every entry of the list, its own socket
        too (its server's certificate then names localhost: tls wiring)."""
        return SYSTEM_CA_BUNDLE if self.primary_tls and self.db_hosts_for(host) != ['localhost'] else ''

    def db_server_remote(self, host):
        """host is a database server that other hosts read or replicate."""
        if host in self.galera_nodes:
            return True
        return self.primary_remote if host == self.primary_db else host in self.replicas and self.replica_remote(host)

    def db_reads_own_with_tls(self, host):
        """host looks users up in its own server with the TLS settings its
        list needs for the others: the socket connection verifies the name
        localhost, which its server's certificate must then carry."""
        return (host in self.db_hosts and any(host in self.groups[g] for g in LOOKUP_GROUPS)
                and bool(self.db_ca_file(host)))

    def webmail_db_server(self, host):
        """The database server of Roundcube on webmail host (one PDO DSN, no
        failover): the primary; with Galera the host's own node when it is
        one, else the nodes in turn over the webmail hosts (losing a node
        costs the sessions of its webmail hosts until it rejoins)."""
        if not self.galera or host in self.galera_nodes:
            return host if host in self.galera_nodes else self.primary_db
        webmail = list(self.groups['mail_webmail'])
        index = webmail.index(host) if host in webmail else 0
        return self.galera_nodes[index % len(self.galera_nodes)]

    def replica_remote(self, replica):
        """Another host reads replica: a reader of the database that is not
        replica itself (every reader lists every replica)."""
        return any(h != replica for group in LOOKUP_GROUPS for h in self.groups[group])

    def is_acme(self, host):
        return self.inventory.optional(host, 'tls_source') == 'acme'

    def fqdn(self, host):
        """host's name in its primary mail domain: the inventory name when it is
        one already (smtp1.example.org), else <name>.<domain>; None without a domain."""
        return host_fqdn(host, self.primary_domain(host))

    def cert_name(self, host):
        """The first name in host's certificate: its inventory name, or with
        ACME its name in the mail domain."""
        return (self.fqdn(host) or host) if self.is_acme(host) else host


# One host: name, the roles it runs (names, in play order), its primary mail
# domain and its name in it (or None), the site's domains (domains.Domain,
# the primary first), the MTA-STS policy of each domain that publishes one
# ({domain: mta_sts.py's {'text', 'id', 'mx'}}, empty when none).
HostFacts = namedtuple('HostFacts', 'name roles domain fqdn domains mta_sts')


def host_facts(name, roles, site, wants_mta_sts):
    """The facts of one host; wants_mta_sts: one of its roles publishes the policies."""
    host_domains = site.domains(name)
    domain = host_domains[0].name if host_domains else None
    name_error = host_name_error(name, domain)
    if name_error:
        site.inventory.errors.append(name_error)
    mta_sts = {}
    if wants_mta_sts:
        for each in host_domains:
            policy = _mta_sts(name, site, each, domain)
            if policy:
                mta_sts[each.name] = policy
    return HostFacts(name, roles, domain, site.fqdn(name), host_domains, mta_sts)


def _mta_sts(host, site, domain, primary):
    """The domain's MTA-STS policy (its MX names are the primary domain's, the
    hosts' names), or None when none is published."""
    inventory = site.inventory
    mode = domain.mta_sts_mode
    if mode == 'off':
        return None
    if not site.groups['mail_webmail']:
        # The policy is served by the webmail hosts' web server. Only a
        # demand to enforce is an error: 'testing' is the default (and what
        # an AWX survey sends when left alone).
        if mode == 'enforce':
            field = ('mailstack_mta_sts_mode' if inventory.optional(host, 'mailstack_mta_sts_mode') == mode
                     else 'mailstack_domains (%s): mta_sts_mode' % domain.name)
            inventory.errors.append("%s: %s is %r but the inventory has no 'mail_webmail' host to serve the policy "
                                    "at https://mta-sts.%s/ (set it to 'off', or add one)"
                                    % (host, field, mode, domain.name))
        return None
    max_age = inventory.optional(host, 'mailstack_mta_sts_max_age', 604800)
    if isinstance(max_age, str) and max_age.isdigit():
        max_age = int(max_age)  # as a survey or -e gives it
    try:
        return mta_sts_policy(site.decision, domain.name, mode, max_age, mx_domain=primary)
    except AnsibleFilterError as e:
        inventory.errors.append('%s: mailstack_mta_sts_max_age: %s' % (host, e))
        return None
