# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Put mailstack_info's per-host results together (see mailstack_report.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError


def _size(n):
    if n is None:
        return '?'
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if n < 1024 or unit == 'TiB':
            return ('%d %s' % (n, unit)) if unit == 'B' else ('%.1f %s' % (n, unit))
        n /= 1024.0
    return '?'  # pragma: no cover


def _host_line(name, m):
    parts = []
    queue = m.get('postfix')
    if queue is not None and not queue.get('running', True):
        parts.append('postfix NOT running')
    elif queue is not None:
        oldest = queue.get('oldest_age_seconds')
        parts.append('queue %d (deferred %d%s)' % (queue['messages'], queue['queues'].get('deferred', 0),
                                                   ', oldest %d s' % oldest if oldest is not None else ''))
    dovecot = m.get('dovecot')
    if dovecot is not None:
        if dovecot.get('running'):
            sessions = dovecot.get('sessions', {})
            text = 'dovecot %d processes, %d users in %d connections' % (
                sum(dovecot['processes'].values()), sessions.get('users', 0), sessions.get('connections', 0))
            if dovecot.get('proxied'):
                text += ', %d proxied' % dovecot['proxied']
            parts.append(text)
        else:
            parts.append('dovecot NOT running')
    db = m.get('database')
    if db is not None:
        if db.get('role') == 'galera':
            node = db.get('galera') or {}
            parts.append('database Galera node, %s, %s, cluster of %s' % (
                node.get('local_state'), node.get('cluster_status'), node.get('cluster_size')))
        elif db.get('role') == 'replica':
            rep = db['replication']
            lag = rep.get('seconds_behind')
            parts.append('database replica, %s, lag %s' % (
                'healthy' if rep.get('healthy') else 'NOT healthy', '%d s' % lag if lag is not None else 'unknown'))
        else:
            parts.append('database primary, %d replica(s) connected' % db.get('replicas', 0))
    storage = m.get('storage')
    if storage is not None:
        fs = storage['file_system']
        text = 'mail root %s%% of bytes, %s%% of inodes used' % (
            fs.get('bytes_used_percent'), fs.get('inodes_used_percent'))
        if storage.get('mail'):
            text += ', %d mailboxes in %s' % (storage['mail']['mailboxes'], _size(storage['mail']['bytes']))
        parts.append(text)
    for cert in m.get('certificates') or []:
        if 'days_left' in cert:
            parts.append('certificate %d days left' % cert['days_left'])
    return '%s: %s' % (name, '; '.join(parts) or 'nothing to report')


def mailstack_report(results):
    """{host: mailstack_info result} -> {hosts, shards, problems, lines}."""
    if not isinstance(results, dict):
        raise AnsibleFilterError('mailstack_report: expects a mapping of host to mailstack_info result, got %s'
                                 % type(results).__name__)
    hosts, problems, lines = {}, [], []
    shard_rows = []
    for name in sorted(results):
        r = results[name] or {}
        if r.get('failed') or r.get('unreachable'):
            problems.append('%s: no report: %s' % (name, r.get('msg', 'failed')))
            lines.append('%s: no report' % name)
            continue
        m = r.get('mailstack') or {}
        hosts[name] = dict(mailstack=m, problems=list(r.get('problems') or []), skipped=r.get('skipped') or {})
        problems.extend('%s: %s' % (name, p) for p in r.get('problems') or [])
        lines.append(_host_line(name, m))
        if not shard_rows and (m.get('database') or {}).get('shards'):
            shard_rows = m['database']['shards']['hosts']
    shards = []
    for row in shard_rows:
        storage = (hosts.get(row['name'], {}).get('mailstack') or {}).get('storage') or {}
        mail = storage.get('mail') or {}
        shards.append(dict(row, bytes=mail.get('bytes'), mailboxes=mail.get('mailboxes')))
    if shards:
        lines.append('shards:')
        for s in shards:
            moving = ', '.join('%d %s' % (n, state) for state, n in sorted(s['moves_in'].items()))
            lines.append('  %s (%s, weight %d): %d users, %s%s' % (
                s['name'], s['state'], s['weight'], s['users'], _size(s['bytes']),
                '; moving in: ' + moving if moving else ''))
    lines.append('problems: %s' % (len(problems) or 'none'))
    lines.extend('  ' + p for p in problems)
    return dict(hosts=hosts, shards=shards, problems=problems, lines=lines)


class FilterModule(object):
    def filters(self):
        return {'mailstack_report': mailstack_report}
