# -*- coding: utf-8 -*-
# Copyright: mailstack developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where each user of a server goes when it is taken out, and who comes
back when it returns (see mail_repin_plan.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError


def mail_repin_plan(pinned, server, state='out', counts=None, returning=None):
    """The re-pins, [{email, source, target}], in email order.

    pinned: {email: the server it is pinned to now} (every user of the site,
      or at least those of server and those in returning).
    server: the server taken out (state out) or returning (state in).
    counts: state out, {active server: its users now}; server itself is
      ignored. Each of server's users goes to the one with the fewest so far
      (ties by name), so the load stays even.
    returning: state in, the users taken off server when it went out; those
      pinned elsewhere now come back (one removed or already back is left).
    """
    if not isinstance(pinned, dict):
        raise AnsibleFilterError('mail_repin_plan expects {email: server}, got %s' % type(pinned).__name__)
    if state == 'out':
        load = dict((name, int(n)) for name, n in (counts or {}).items() if name != server)
        users = sorted(email for email, host in pinned.items() if host == server)
        if users and not load:
            raise AnsibleFilterError('%s has %d user(s) and no other mailbox server is active to take them'
                                     % (server, len(users)))
        plan = []
        for email in users:
            target = min(sorted(load), key=lambda name: load[name])
            load[target] += 1
            plan.append({'email': email, 'source': server, 'target': target})
        return plan
    if state == 'in':
        if not isinstance(returning, (list, tuple)):
            raise AnsibleFilterError('mail_repin_plan: state in needs the list of returning users, got %s'
                                     % type(returning).__name__)
        return [{'email': email, 'source': pinned[email], 'target': server}
                for email in sorted(set(returning)) if pinned.get(email) not in (None, server)]
    raise AnsibleFilterError("mail_repin_plan: state must be 'out' or 'in', not %r" % (state,))


class FilterModule(object):
    def filters(self):
        return {'mail_repin_plan': mail_repin_plan}
