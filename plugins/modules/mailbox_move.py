#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: mailbox_move
short_description: Move one user's mailbox to another mailbox server (shard) without losing a message
version_added: 0.2.0
description:
  - Moves the mailbox of O(email) from the shard the mail database names for it (C(mailbox.mailbox_host)) to
    O(target), while the user stays reachable, in the order Dovecot's proxy documentation describes. Each step
    below says why it is safe; none of them rests on a fixed wait.
  - 1. Record the move (C(mailbox_move), state C(copying)) with a lock in the record, an owner
    (C(host:pid)) and an expiry renewed at every step. A second run for the same user is refused, naming the
    owner; a run that died frees the user when its lock expires (at once when the owner was a process of this
    host that no longer exists). A finished record whose source copy is not removed yet is never overwritten.
  - 2. Copy with dsync, C(doveadm backup -R -s STATE) pulling from the source shard's doveadm server, while the
    user keeps working there, twice. C(backup) makes the target exactly the source, so a stale copy on the
    target cannot flow back; the second pass is incremental (C(-s), the state of the first, saved in the
    record), so little is left for the hold. Safe to repeat after a crash, the source is only read.
  - Before the move is recorded, and again just before the flip, the doveadm servers of the source and the target
    must answer (an authenticated C(doveadm who)); else the run refuses, naming the server, and nothing changes
    (the copy only read the source). The proxies are not required (see step 4).
  - 3. Hold and flip in one transaction - C(mailbox.hold_until) is now + O(hold_timeout) and
    C(mailbox.mailbox_host) becomes O(target). From here the SMTP tier accepts the user's mail and holds it in its
    queue (the transport C(held), in C(defer_transports); delivered after the hold), and the proxies and the
    shards delay every login of the user until C(hold_until) (the passdb field
    C(delay_until), the hold's own expiry; Dovecot accepts a delay of up to 5 minutes,
    C(AUTH_REQUEST_MAX_DELAY_SECS) in src/auth/auth-request.c, hence O(hold_timeout) at most 290). So no client
    reaches the target before the final sync ends, and no new session or delivery reaches the source - a
    login or an LMTP delivery that still reaches the source (a proxy's lookup from before the flip) waits and is
    then passed on to the target (C(proxy_maybe) on the shards).
  - 3b. Before anything relies on the readers seeing the flip and the hold, every replica that readers use has
    applied them (Dovecot and Postfix read the replicas while the primary is up) - the primary's GTID of this run's
    last commit (C(@@last_gtid)), then C(MASTER_GTID_WAIT) on each of O(replicas) within O(replica_timeout).
    A replica that answers but has not applied it (a stopped SQL thread, lag) fails the run, still held, naming
    it and how far behind it is; one that refuses the connection (down) serves no reader and is passed over
    with a warning; any other failure (a connect timeout, a refused login) fails the run too. The same wait
    just before the flip (on the move's record) fails a run without a hold when a replica is behind already;
    and after the flip back of O(abort=true). The release needs no wait - a replica that lags still says held
    for a moment, and logins wait that much longer.
  - 4. End the user's sessions and prove they ended - C(doveadm proxy kick) on every proxy of O(proxies) (best
    effort - a proxy that is down has no session, one that does not answer within 5 seconds is passed over, and
    either is reported as a warning), then
    C(doveadm kick) on the source shard, repeated until C(doveadm who) on the source reports no session of the
    user (the kick on the shard ends proxied sessions too; an IDLE session, a COPY or an APPEND under way
    ends with its process). If sessions remain after O(quiet_timeout) the run fails, still held, and a rerun
    resumes here.
  - 5. Final two-way C(doveadm sync -s STATE) with the source, incremental from the saved state, repeated until
    a whole pass finds the source unchanged (the status of each of its mailboxes - messages, UIDNEXT,
    UIDVALIDITY, GUID - the same before and after the pass, and no session). An LMTP delivery the source
    accepted before the flip and wrote during a pass changes UIDNEXT, so the next pass takes it; at most
    O(max_syncs) passes, else the run fails, still held (nothing is lost - the hold ends by itself and a rerun
    syncs again, two-way).
  - 5b. The proof - every message of the source (by mailbox and GUID, C(doveadm fetch 'mailbox guid' all) on
    both shards) is on the target. A saved dsync state can miss a message - one saved on the source just
    before the flip while a delivery that had been routed before the hold took the same UID on the target
    (the lab's loop of moves under load lost one message so in 3 moves of 21). When one is missing, one full
    two-way pass (no state, so dsync compares every message and renumbers a UID taken twice) and the proof
    again; still missing, the run fails, still held, nothing released or removed. This costs a listing of
    the mailbox on each shard inside the hold.
  - 6. Release in one transaction - state C(done), C(hold_until) cleared, and the source's status of the last
    pass saved in the record for the cleanup. The SMTP tier delivers the held mail at its next attempt (the
    C(move_user) playbook asks it at once).
  - dsync keeps UIDs, UIDVALIDITY and flags, so clients do not download the mailbox again.
  - O(abort=true) rolls an unfinished move back, run on the target - from C(copying) the target's copy is
    removed; from C(held) the mailbox is flipped back under a new hold, the target's sessions are ended and
    proven gone, the two-way syncs run until the target is quiet, the hold is released and only then is the
    target's copy removed.
  - O(cleanup=true), run on the source shard, removes the copy a finished move left there only when it proves
    the target holds all of it - the copy's status is what the final sync left (saved in the record). If it
    changed (a late write into the old copy), its sessions are ended and it is synced into the target, two-way
    from the dsync state of the final sync, until a pass finds it unchanged (reported as a warning, and
    C(merged)); if that fails, nothing is removed. It refuses a path that is not one user's mailbox (empty, outside
    O(mail_root), or holding or inside another user's maildir, such as C(example.org/)), and renames the copy
    aside before deleting it, so no Dovecot process reads a half-deleted Maildir and a removal cut short is
    finished by the next run.
  - Runs on the target shard (or, with O(cleanup=true), on the source shard), which needs the doveadm server
    settings of the C(dovecot) role (C(dovecot_doveadm_listen), C(dovecot_doveadm_password)) and an account
    on the mail database that may read C(mailbox) (C(email), C(mailbox_host), C(maildir), C(maildir_odd)),
    C(mailbox_host) (C(name), C(address), C(state)) and C(schema_version), update C(mailbox.mailbox_host) and
    C(mailbox.hold_until), and read and write C(mailbox_move) - the moves' account the C(mail_database) role
    makes for the shards (C(mail_database_mover_user)); no more is needed. The mail schema must be at version 6
    or later (the other users' maildirs near this one's are read from its index).
  - Why a module of its own - no Ansible module moves a Dovecot mailbox between servers; the community
    C(dsync) examples are shell scripts that neither hold deliveries nor resume.
  - The state machine is in C(plugins/module_utils/mailbox_move_machine.py), with the database, Dovecot and
    disk sides beside it (C(mailbox_move_db.py), C(mailbox_move_dovecot.py), C(mailbox_move_fs.py)).
options:
  email:
    description:
      - The user whose mailbox moves.
    type: str
    required: true
  target:
    description:
      - The name of the mailbox host (C(mailbox_host.name)) the mailbox moves to. It must be C(active), and the
        module must run on it (one of this host's addresses is the target's address).
      - Ignored with O(cleanup=true).
    type: str
  proxies:
    description:
      - The doveadm servers of the Dovecot proxies (C(host) or C(host:port)), where the user's sessions are
        ended once the mailbox has moved.
    type: list
    elements: str
    default: []
  doveadm_port:
    description:
      - The TCP port of the doveadm servers (where no port is given).
    type: int
    default: 24245
  doveadm_password:
    description:
      - The doveadm servers' shared secret (C(dovecot_doveadm_password)).
    type: str
    required: true
  hold_timeout:
    description:
      - The longest the hold may last, in seconds, from 10 to 290; if this run dies the hold ends by itself then
        (the next run resumes the move and its final sync keeps everything). Mail waits in the SMTP tier
        meanwhile.
      - A login that arrives during the hold waits until the hold's expiry (not its release), so that no client
        reaches the target before the final sync ends; keep it short.
    type: int
    default: 30
  quiet_timeout:
    description:
      - After the kicks, how long to wait for the source shard to report no session of the user (C(doveadm who))
        before the run fails, still held. Part of the hold.
    type: float
    default: 10
  max_syncs:
    description:
      - The most final two-way syncs before the run fails, still held, because the source keeps changing.
    type: int
    default: 5
  lock_seconds:
    description:
      - The expiry of the move's lock, renewed at every step; another run may take over a move whose lock
        expired.
    type: int
    default: 900
  run_seconds:
    description:
      - The longest this run may last, in seconds (0 - no bound); for a caller that runs the module under a time
        limit (the C(drain_shard) playbook's C(async)), so that the limit never kills a move that holds.
      - The hold starts only when at least O(hold_timeout) of it is left after the copy (else the run fails,
        still C(copying), and a rerun resumes it incrementally), and no final sync starts once it is spent (the
        run fails, still held, and a rerun resumes). So the run ends at most one incremental sync pass after
        O(run_seconds); the caller's limit must leave room for that pass.
    type: int
    default: 0
  replicas:
    description:
      - The replicas of the mail database that readers (Dovecot, Postfix) use, reached at O(login_port) with the
        module's account (the C(mail_database) role makes the moves' account on the replicas too, without any
        right on the database - C(MASTER_GTID_WAIT) needs none). The flip and the hold are waited for on each
        (step 3b).
      - When omitted - every server of O(login_host) but the one the module writes through, since each reader
        lists every server of the site (the wiring's C(dovecot_db_hosts), which the playbooks give as
        O(login_host)); none with O(login_unix_socket). Give it when this host's list is not every server the
        readers use (a list pinned in the inventory).
    type: list
    elements: str
  replica_timeout:
    description:
      - How long, in seconds, all of O(replicas) together may take to apply the flip; part of the hold. More than
        0 and less than half of O(hold_timeout).
    type: float
    default: 5
  abort:
    description:
      - Roll an unfinished move of O(email) back - the mailbox stays on (or returns to) the source shard. Does
        nothing when no move is unfinished.
    type: bool
    default: false
  cleanup:
    description:
      - Remove the copy a finished move left on the source shard, and the move's record. It acts only on the
        source shard (on any other host it changes nothing), so it can run on every shard.
    type: bool
    default: false
  mail_root:
    description:
      - With O(cleanup=true) or O(abort=true), the root of the Maildirs (C(dovecot_mail_root)); the copy is
        C(<mail_root>/<mailbox.maildir>).
    type: path
    default: /var/vmail
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mailops.mailstack.maildb
  - mailops.mailstack.maildb.mail_database
attributes:
  check_mode:
    support: full
    details: Reports the plan, and the number and size of the messages to copy (asked from the source shard).
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Idempotent - with the mailbox already on O(target) and no move unfinished, nothing changes.
  - Needs the C(mail_schema) at version 4 or later.
seealso:
  - module: mailops.mailstack.mail_host
  - module: mailops.mailstack.mail_user
  - name: Dovecot proxies, moving users between backends
    description: The procedure this module follows.
    link: https://doc.dovecot.org/2.3/configuration_manual/authentication/proxies/
author:
  - mailstack developers (@mailops)
'''

EXAMPLES = r'''
- name: Move alice to ms2 (run on ms2)
  mailops.mailstack.mailbox_move:
    email: alice@example.org
    target: ms2
    proxies: [10.0.0.31, 10.0.0.32]
    doveadm_password: "{{ dovecot_doveadm_password }}"
    login_host: 10.0.0.53
    login_user: mail_mover
    login_password: "{{ mail_database_mover_password }}"

- name: Remove the copy the move left on ms1 (run on ms1)
  mailops.mailstack.mailbox_move:
    email: alice@example.org
    cleanup: true
    doveadm_password: "{{ dovecot_doveadm_password }}"
    login_host: 10.0.0.53
    login_user: mail_mover
    login_password: "{{ mail_database_mover_password }}"
'''

RETURN = r'''
retries:
  description:
    - Times the move's database writes ran again after MariaDB ended it with 1213 (a Galera certification conflict, another
      node having changed the same rows first, or a deadlock), each a transaction of its own; at most 3, after which the module
      fails with the error.
  returned: when the run got that far
  type: int
  sample: 0
email:
  description: The user.
  returned: always
  type: str
source:
  description: The shard the mailbox was on (or moves from).
  returned: when a move is planned, done or rolled back
  type: str
target:
  description: The shard the mailbox is on after this run.
  returned: always
  type: str
outcome:
  description:
    - What this run did - C(none), C(moved), C(resumed), C(aborted), C(cleaned).
    - Not named C(action), which Ansible's callbacks use for the module's name.
  returned: always
  type: str
messages:
  description: Messages in the mailbox on the source shard (check mode, and before the copy).
  returned: when a move is planned or done
  type: int
bytes:
  description: Their size in bytes (virtual size).
  returned: when a move is planned or done
  type: int
copy_seconds:
  description: Time of the copy while the user stayed live.
  returned: when the mailbox moved
  type: float
hold_seconds:
  description: How long the user's deliveries and logins were held.
  returned: when the mailbox moved
  type: float
sync_seconds:
  description: Time of the final two-way syncs, within the hold.
  returned: when the mailbox moved
  type: float
removed:
  description: With O(abort=true), the path of the target's copy that was removed.
  returned: when a move was rolled back and a copy removed
  type: str
merged:
  description: With O(cleanup=true), true when the old copy had changed since the final sync and was synced into
    the target before its removal.
  returned: when cleaned after a late write
  type: bool
path:
  description: With O(cleanup=true), the path of the source copy removed.
  returned: when cleaned
  type: str
seconds:
  description: Time of the move in the module, from the start of the copy to the release of the hold.
  returned: when the mailbox moved
  type: float
'''


import os
import socket

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mailops.mailstack.plugins.module_utils import mailbox_move_fs as fs
from ansible_collections.mailops.mailstack.plugins.module_utils.doveadm import DoveadmError
from ansible_collections.mailops.mailstack.plugins.module_utils.maildb import (
    connect, db_error_text, maildb_argument_spec, pymysql, require_schema,
)
from ansible_collections.mailops.mailstack.plugins.module_utils.mailbox_move_db import MoveDB
from ansible_collections.mailops.mailstack.plugins.module_utils.mailbox_move_dovecot import Dovecot, DsyncError
from ansible_collections.mailops.mailstack.plugins.module_utils.mailbox_move_machine import MoveError, Mover
from ansible_collections.mailops.mailstack.plugins.module_utils.replica_wait import waiter


def local_addresses(module):
    rc, out, err = module.run_command(['ip', '-o', 'addr', 'show'])
    if rc != 0:
        raise MoveError('cannot list this host\'s addresses (ip addr): %s' % err.strip())
    found = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[2] in ('inet', 'inet6'):
            found.add(parts[3].split('/')[0])
    return found


def owner_alive(owner):
    # A process of this host that no longer exists holds no lock; any other owner may be alive.
    host, _sep, pid = owner.rpartition(':')
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def check_params(module):
    p = module.params
    if not 10 <= p['hold_timeout'] <= 290:
        module.fail_json(msg='hold_timeout: must be from 10 to 290 seconds (a login waits until the hold expires '
                             'and Dovecot delays a login 5 minutes at most), got %d' % p['hold_timeout'])
    if not 0 < p['quiet_timeout'] < p['hold_timeout'] / 2:
        module.fail_json(msg='quiet_timeout: must be over 0 and under half of hold_timeout, got %s'
                         % p['quiet_timeout'])
    if p['run_seconds'] and p['run_seconds'] < 2 * p['hold_timeout']:
        module.fail_json(msg='run_seconds: must be 0 (no bound) or at least twice hold_timeout (%d), got %d'
                         % (p['hold_timeout'], p['run_seconds']))
    if not 0 < p['replica_timeout'] < p['hold_timeout'] / 2:
        module.fail_json(msg='replica_timeout: must be over 0 and under half of hold_timeout, got %s'
                         % p['replica_timeout'])
    if p['max_syncs'] < 2 or p['lock_seconds'] < 60:
        module.fail_json(msg='max_syncs: must be 2 or more (got %d), lock_seconds 60 or more (got %d)'
                         % (p['max_syncs'], p['lock_seconds']))


def build(module, conn):
    p = module.params
    addresses = []

    def is_local(address):
        if not addresses:
            addresses.append(local_addresses(module))
        return address.strip('[]') in addresses[0]

    dovecot = Dovecot(module.run_command, p['email'].strip().lower(), p['doveadm_password'], p['doveadm_port'])
    return Mover(p['email'], p, MoveDB(conn), dovecot, fs, is_local,
                 owner='%s:%d' % (socket.gethostname(), os.getpid()), owner_alive=owner_alive,
                 check_mode=module.check_mode, replicas=waiter(p, conn))


def main():
    argument_spec = maildb_argument_spec()
    argument_spec.update(
        email=dict(type='str', required=True),
        target=dict(type='str'),
        proxies=dict(type='list', elements='str', default=[]),
        doveadm_port=dict(type='int', default=24245),
        doveadm_password=dict(type='str', required=True, no_log=True),
        hold_timeout=dict(type='int', default=30),
        quiet_timeout=dict(type='float', default=10),
        max_syncs=dict(type='int', default=5),
        lock_seconds=dict(type='int', default=900),
        run_seconds=dict(type='int', default=0),
        replicas=dict(type='list', elements='str'),
        replica_timeout=dict(type='float', default=5),
        abort=dict(type='bool', default=False),
        cleanup=dict(type='bool', default=False),
        mail_root=dict(type='path', default='/var/vmail'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('abort', 'cleanup')])
    check_params(module)
    conn = connect(module)
    mover = build(module, conn)
    try:
        # 6: the other maildirs near the user's, from the index (MoveDB.other_maildirs)
        require_schema(module, conn, 6)
        result = mover.run()
    except (MoveError, DoveadmError, DsyncError, fs.CopyPathError) as e:
        module.fail_json(msg=str(e), email=mover.email, warnings=mover.warnings)
    except pymysql.err.MySQLError as e:
        module.fail_json(msg='%s: mail database: %s' % (mover.email, db_error_text(e)), retries=mover.db.retries)
    finally:
        conn.close()
    result['retries'] = mover.db.retries
    for warning in result.pop('warnings', []):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
