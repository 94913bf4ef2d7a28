# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions of the NFS topology's re-pin (playbooks/repin_server.yml),
as plain functions the filters of plugins/filter/repin.py expose.

A re-pin moves no mail: a user's mailbox_host says which server may open
the user's files on the shared store. Its rule is that a user is never live
on two servers:

1. plan: who moves where; the plan is written to the database host
   (/var/lib/mailstack/repin/current.json) before anything changes, so a run
   that dies at any later step is finished by the next run (resume);
2. probe every server; a server whose users move and that does not answer
   is fenced on the NFS server (its export withdrawn, its NFSv4 state
   expired) before anyone else opens those users' files; a target or a
   returning server that does not answer stops the run;
3. flip and hold in one statement (new pin, hold_until): a login looked up
   from then on is delayed and then goes to the new server, mail for the
   users is deferred by the MX tier;
4. on every server that answers: end the users' sessions and wait until a
   pass finds none (doveadm who, proxy list) and no delivery to them in
   Postfix's active queue; a server that neither reports that nor is fenced
   stops the release;
5. wait out the NFS attribute cache (actimeo) from the flip, then release.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.mailops.mailstack.plugins.module_utils.replica_wait import ReplicaLagError, verdict

STATES = ('out', 'in')
# The phases of a re-pin, recorded in its state file as each step ends.
PHASES = ('planned', 'fenced', 'flipped', 'clear', 'released')


def plan_out(pinned, server, counts):
    """Every user pinned to server goes to the active server with the
    fewest users so far (ties by name)."""
    load = dict((name, int(n)) for name, n in (counts or {}).items() if name != server)
    users = sorted(email for email, host in pinned.items() if host == server)
    if users and not load:
        raise AnsibleFilterError('%s has %d user(s) and no other mailbox server is active (and answering) to '
                                 'take them' % (server, len(users)))
    plan = []
    for email in users:
        target = min(sorted(load), key=lambda name: load[name])
        load[target] += 1
        plan.append({'email': email, 'source': server, 'target': target})
    return plan


def plan_in(pinned, server, returning):
    """The users taken off server that are pinned elsewhere now come back."""
    if not isinstance(returning, (list, tuple)):
        raise AnsibleFilterError('mail_repin_plan: state in needs the list of returning users, got %s'
                                 % type(returning).__name__)
    return [{'email': email, 'source': pinned[email], 'target': server}
            for email in sorted(set(returning)) if pinned.get(email) not in (None, server)]


def plan(pinned, server, state='out', counts=None, returning=None):
    """The re-pins, [{email, source, target}], in email order."""
    if not isinstance(pinned, dict):
        raise AnsibleFilterError('mail_repin_plan expects {email: server}, got %s' % type(pinned).__name__)
    if state == 'out':
        return plan_out(pinned, server, counts)
    if state == 'in':
        return plan_in(pinned, server, returning)
    raise AnsibleFilterError("mail_repin_plan: state must be 'out' or 'in', not %r" % (state,))


def resume(saved, server, state):
    """What an unfinished re-pin's state file (saved, {} when there is none)
    means for a run asked to take server state: the saved record to finish
    (the same request), or {} to plan anew. Another unfinished request is
    refused: it must be finished first, or its users would be planned from
    pins it already changed."""
    if not saved or saved.get('phase') == 'released':
        return {}
    if saved.get('phase') not in PHASES:
        raise AnsibleFilterError('the re-pin state file has an unknown phase %r' % (saved.get('phase'),))
    if (saved.get('server'), saved.get('state')) != (server, state):
        raise AnsibleFilterError(
            'an unfinished re-pin of %s (%s, phase %s, %d user(s)) must be finished first: run repin_server.yml '
            'with mailstack_repin_server=%s mailstack_repin_state=%s'
            % (saved.get('server'), saved.get('state'), saved.get('phase'), len(saved.get('plan') or []),
               saved.get('server'), saved.get('state')))
    return saved


def fence_decision(plan, server, state, answering, fenced):
    """Which servers to fence before the flip: every source of the plan
    that does not answer and is not fenced yet (its sessions cannot be
    ended, so its access to the store is withdrawn instead). A target that
    does not answer, or a server coming back that does not answer, stops
    the run: the users would be pinned where nobody can serve them."""
    answering = set(answering)
    targets = set(move['target'] for move in plan)
    if state == 'in' and server not in answering:
        raise AnsibleFilterError('%s does not answer: it cannot take its users back; start it (and its Dovecot) '
                                 'first' % server)
    down = sorted(t for t in targets if t not in answering)
    if down:
        raise AnsibleFilterError('the plan pins users to %s, which does not answer; rerun when it does (the plan '
                                 'is kept)' % ', '.join(down))
    sources = set(move['source'] for move in plan)
    if state == 'out':
        sources.add(server)
    return sorted(s for s in sources if s not in answering and s not in (fenced or {}))


def release_check(servers, reports, fenced):
    """The servers that stop the release: each must have reported that the
    users have no session and no delivery there (reports: {server: the
    session script's result}), or be fenced. Returns the errors, [] when
    the hold may be lifted."""
    errors = []
    for name in sorted(servers):
        if name in (fenced or {}):
            continue
        report = (reports or {}).get(name)
        if not report or report.get('clear') is not True:
            errors.append('%s did not report the users free of sessions and deliveries (%s); the hold stays: '
                          'rerun when it answers, or when it is down for good (then it is fenced)'
                          % (name, (report or {}).get('msg') or 'no answer'))
    return errors


def unfence_check(server, fenced, boot_time):
    """Whether server, fenced at fenced[server]['at'], may have its access
    to the store back: only once it has restarted since (boot_time, the
    epoch of its boot, later than the fence), because a kernel that hung
    with writes of users who were moved away may still hold them. Returns
    the error, '' when it may."""
    record = (fenced or {}).get(server)
    if not record:
        return ''
    if boot_time is None or float(boot_time) <= float(record['at']):
        return ('%s was fenced at %s (its users moved while it did not answer) and has not restarted since: its '
                'kernel may still hold their writes. Restart it (a reboot, or a power cycle), then rerun'
                % (server, record['at']))
    return ''


def release_wait(flipped_at, now, cache_seconds):
    """Seconds still to wait before the release: until cache_seconds (the
    NFS clients' attribute cache time, actimeo) after the flip, so that no
    server serves a user from attributes it cached before the flip."""
    return max(0, int(float(flipped_at) + int(cache_seconds) - float(now) + 0.999))


def replica_answer(result):
    """(state, detail) of one replica's wait in repin_server.yml (its
    registered mysql_query, run on the replica's host over its socket):
    applied, behind, down (its server refuses: no reader reads it) or error
    (its host does not answer: it may serve the old pins when it does)."""
    if result.get('unreachable'):
        return 'error', 'its host does not answer (%s)' % (result.get('msg') or '').strip()
    if result.get('failed') or not result.get('query_result'):
        msg = (result.get('msg') or '').strip()
        down = 'Connection refused' in msg or 'No such file or directory' in msg
        return ('down' if down else 'error'), msg
    row = result['query_result'][0][0]
    return ('applied' if row.get('waited') == 0 else 'behind'), row.get('position')


def replica_check(results, position, timeout):
    """Whether every replica has applied the flip (position: the primary's
    after it): {'errors': [...], 'warnings': [...]} (replica_wait.verdict)."""
    answers = [(r.get('item'),) + replica_answer(r) for r in results or []]
    try:
        return {'errors': [], 'warnings': verdict(position, answers, timeout)}
    except ReplicaLagError as e:
        return {'errors': [str(e)], 'warnings': []}
