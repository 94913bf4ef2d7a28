# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What mailstack_info reads, as pure functions of the commands' outputs
(unit-tested on recorded outputs): the Postfix queue, Dovecot's processes and
sessions, the mail store's file system, certificates, the shards."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import calendar
import json
import os
import time

QUEUES = ('maildrop', 'incoming', 'active', 'deferred', 'hold', 'corrupt')
REASONS_SHOWN = 5
REASON_LENGTH = 160


def postfix_queue(lines, now=None):
    """Summary of ``postqueue -j`` (one JSON object per queued message)."""
    now = time.time() if now is None else now
    counts = dict((q, 0) for q in QUEUES)
    reasons = {}
    oldest = None
    size = 0
    for line in lines.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            raise ValueError('postqueue -j: not a JSON line: %r' % line[:200])
        queue = msg.get('queue_name', 'unknown')
        counts[queue] = counts.get(queue, 0) + 1
        size += int(msg.get('message_size', 0) or 0)
        arrival = msg.get('arrival_time')
        if arrival is not None and (oldest is None or arrival < oldest):
            oldest = arrival
        if queue == 'deferred':
            for rcpt in msg.get('recipients', []):
                reason = (rcpt.get('delay_reason') or '').strip()[:REASON_LENGTH]
                if reason:
                    reasons[reason] = reasons.get(reason, 0) + 1
    top = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))[:REASONS_SHOWN]
    return dict(
        messages=sum(counts.values()),
        queues=counts,
        bytes=size,
        oldest_age_seconds=None if oldest is None else max(0, int(now - oldest)),
        deferred_reasons=[dict(reason=r, recipients=n) for r, n in top],
    )


def dovecot_processes(titles):
    """Counts of Dovecot's processes by service, from their process titles
    (``dovecot/imap``, ``dovecot/imap-login``, ...; the master is ``dovecot``)."""
    counts = {}
    for title in titles:
        words = title.split()
        if not words:
            continue
        first = words[0]
        if first.startswith('dovecot/'):
            service = first[len('dovecot/'):]
        elif os.path.basename(first) == 'dovecot':
            service = 'master'
        else:
            continue
        if service:
            counts[service] = counts.get(service, 0) + 1
    return counts


def process_titles(proc='/proc'):
    """Every process's command line, as the process title shows it."""
    titles = []
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        try:
            with open(os.path.join(proc, pid, 'cmdline'), 'rb') as f:
                raw = f.read()
        except (IOError, OSError):
            continue  # gone meanwhile
        if raw:
            titles.append(raw.replace(b'\0', b' ').decode('utf-8', 'replace').strip())
    return titles


def dovecot_sessions(tab_output):
    """Users and connections from ``doveadm -f tab who`` (a header line, then
    username, connections, service, pids, ips)."""
    lines = [line for line in tab_output.splitlines() if line.strip()]
    if not lines:
        return dict(users=0, connections=0, by_service={})
    header = lines[0].split('\t')

    def column(*names):
        for name in names:
            if name in header:
                return header.index(name)
        raise ValueError('doveadm who: no column %s in the header %r' % (' or '.join(names), lines[0]))

    # The tab formatter prints the columns' titles (#, proto) or, in other
    # versions, their keys (connections, service).
    user_col, conn_col, service_col = column('username'), column('#', 'connections'), column('proto', 'service')
    users = set()
    connections = 0
    by_service = {}
    for line in lines[1:]:
        cols = line.split('\t')
        if len(cols) <= max(user_col, conn_col, service_col):
            continue
        users.add(cols[user_col])
        n = int(cols[conn_col] or 0)
        connections += n
        by_service[cols[service_col]] = by_service.get(cols[service_col], 0) + n
    return dict(users=len(users), connections=connections, by_service=by_service)


def proxied_sessions(tab_output):
    """Sessions from ``doveadm -f tab proxy list``: blocks of a header line
    (``username`` first) and one line per proxied session."""
    return sum(1 for line in tab_output.splitlines()
               if line.strip() and line.split('\t', 1)[0] != 'username')


def file_system(stat):
    """Size and inode use of a file system, from an os.statvfs result."""
    total = stat.f_blocks * stat.f_frsize
    free = stat.f_bavail * stat.f_frsize
    used = (stat.f_blocks - stat.f_bfree) * stat.f_frsize
    inodes_used = stat.f_files - stat.f_ffree
    return dict(
        bytes_total=total, bytes_used=used, bytes_available=free,
        bytes_used_percent=round(100.0 * used / (used + free), 1) if used + free else None,
        inodes_total=stat.f_files, inodes_used=inodes_used, inodes_available=stat.f_favail,
        inodes_used_percent=round(100.0 * inodes_used / stat.f_files, 1) if stat.f_files else None,
    )


def tree_usage(root):
    """Bytes and files under root, and the mailbox directories (DOMAIN/USER)
    it holds."""
    size = files = 0
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            try:
                size += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue  # expunged meanwhile
            files += 1
    mailboxes = 0
    for domain in os.listdir(root) if os.path.isdir(root) else []:
        path = os.path.join(root, domain)
        if os.path.isdir(path):
            mailboxes += sum(1 for user in os.listdir(path) if os.path.isdir(os.path.join(path, user)))
    return dict(bytes=size, files=files, mailboxes=mailboxes)


def openssl_time(value):
    """Seconds since the epoch of an openssl date (``Mar  1 12:00:00 2027 GMT``)."""
    return calendar.timegm(time.strptime(' '.join(value.split()), '%b %d %H:%M:%S %Y %Z'))


def certificate(path, openssl_output, now=None):
    """Expiry of a certificate from ``openssl x509 -noout -enddate -subject``."""
    now = time.time() if now is None else now
    fields = {}
    for line in openssl_output.splitlines():
        key, sep, value = line.partition('=')
        if sep:
            fields[key.strip()] = value.strip()
    if 'notAfter' not in fields:
        raise ValueError('%s: openssl printed no notAfter' % path)
    expires = openssl_time(fields['notAfter'])
    return dict(path=path, subject=fields.get('subject', ''),
                not_after=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(expires)),
                days_left=int((expires - now) // 86400))


def shards(host_rows, user_rows, move_rows):
    """The shards: (name, address, state, weight) rows, (mailbox_host,
    users) counts, (target, state, moves) counts of moves not done."""
    users = dict((name, int(n)) for name, n in user_rows)
    moving = {}
    for target, state, n in move_rows:
        moving.setdefault(target, {})[state] = int(n)
    result = [dict(name=name, address=address, state=state, weight=int(weight), users=users.pop(name, 0),
                   moves_in=moving.get(name, {}))
              for name, address, state, weight in host_rows]
    unplaced = users.pop(None, 0)
    return dict(hosts=result, users_without_host=unplaced,
                users_on_unknown_hosts=dict((k, v) for k, v in users.items()))


# The status a Galera node reports about itself and its cluster
# (SHOW GLOBAL STATUS), as galera() names them.
GALERA_STATUS = ('wsrep_cluster_size', 'wsrep_cluster_status', 'wsrep_local_state_comment', 'wsrep_ready',
                 'wsrep_cluster_state_uuid')


def galera(status):
    """A Galera node's view ({wsrep_* name: value} from SHOW GLOBAL STATUS):
    cluster_size, cluster_status (Primary, or non-Primary when it lost the
    quorum), local_state (Synced, Donor/Desynced, Joining...), ready,
    cluster_uuid."""
    size = status.get('wsrep_cluster_size')
    return dict(cluster_size=int(size) if str(size or '').isdigit() else None,
                cluster_status=status.get('wsrep_cluster_status'),
                local_state=status.get('wsrep_local_state_comment'),
                ready=str(status.get('wsrep_ready', '')).upper() == 'ON',
                cluster_uuid=status.get('wsrep_cluster_state_uuid'))


def problems(info, cert_warn_days, disk_warn_percent):
    """What an operator should look at, one sentence each."""
    found = []
    for service in ('postfix', 'dovecot'):
        if service in info and not info[service].get('running'):
            found.append('%s: enabled but not running' % service)
    queue = info.get('postfix') or {}
    if queue.get('queues', {}).get('deferred'):
        found.append('postfix: %d deferred message(s), the oldest queued %s s ago'
                     % (queue['queues']['deferred'], queue.get('oldest_age_seconds')))
    if queue.get('queues', {}).get('hold'):
        found.append('postfix: %d message(s) on hold' % queue['queues']['hold'])
    replication = (info.get('database') or {}).get('replication')
    if replication and not replication.get('healthy', True):
        found.append('database: replication is not healthy: %s' % '; '.join(replication.get('problems', [])))
    node = (info.get('database') or {}).get('galera')
    if node and node.get('cluster_status') != 'Primary':
        found.append('database: this Galera node is outside the Primary component (%s): it refuses reads and '
                     'writes (the cluster lost its quorum, or this node its peers)' % node.get('cluster_status'))
    elif node and (node.get('local_state') != 'Synced' or not node.get('ready')):
        found.append('database: this Galera node is %s%s, not Synced' % (
            node.get('local_state'), '' if node.get('ready') else ' and not ready'))
    fs = (info.get('storage') or {}).get('file_system') or {}
    for key in ('bytes_used_percent', 'inodes_used_percent'):
        if fs.get(key) is not None and fs[key] >= disk_warn_percent:
            found.append('storage: %s at %s%% (warning from %s%%)' % (key.split('_', maxsplit=1)[0], fs[key], disk_warn_percent))
    for cert in info.get('certificates') or []:
        if cert.get('days_left') is not None and cert['days_left'] < cert_warn_days:
            found.append('certificate %s expires in %d day(s)' % (cert['path'], cert['days_left']))
        if cert.get('error'):
            found.append('certificate %s: %s' % (cert['path'], cert['error']))
    return found
