# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""maildir_sync's plan: the two listings compared, per folder, by each message's unique base name.

What the target gets besides rsync's copy - renames, removals of duplicates and of index files
Dovecot is to rebuild, deletions (``delete``) - and the messages rsync is to copy.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from .maildir_sync_maildir import FOLDER_INDEX_RE, ROOT_INDEX_RE, base_name, join, top_maildir


class Plan(object):
    """What is changed on the target besides rsync's copy (paths relative to its root)."""

    def __init__(self):
        self.renames = []         # (old, new): a stale-flag copy gets the source's name
        self.duplicates = []      # extra target copies of a message the source has
        self.index_removals = []  # target index files Dovecot is to rebuild (rebuild_indexes)
        self.copies = []          # source messages the target lacks: rsync copies exactly these
        self.new_dirs = []        # cur/ and new/ of folders the target lacks (made even when empty)
        self.deletions = []       # target-only messages, removed after the copy (delete=true)
        self._removal_set = set()
        self.touched = set()      # folders whose messages change
        self.uidlist_changed = set()  # folders whose dovecot-uidlist is replaced

    @property
    def target_changes(self):
        """Whether anything is renamed or removed on the target before the copy."""
        return bool(self.renames or self.duplicates or self.index_removals)

    def remove_index(self, folder, names, pattern):
        for n in sorted(names):
            path = join(folder, n)
            if pattern.match(n) and path not in self._removal_set:
                self.index_removals.append(path)
                self._removal_set.add(path)


def plan_uidlists(plan, src, dst, opts):
    """Folders whose dovecot-uidlist is replaced; with rebuild_indexes, their index files go first.

    A replaced dovecot-uidlist may give UIDs that the target's index and cache hold for other
    messages (mail delivered to the target during a failover): the target's Dovecot must rebuild
    that folder's index, and the list index of its mailbox, from the Maildir and the new uidlist.
    """
    if opts['dovecot_files'] == 'exclude_all':
        return plan
    for folder, key in src.uidlists.items():
        if folder in dst.maildirs and dst.uidlists.get(folder) != key:
            plan.uidlist_changed.add(folder)
    if opts['dovecot_files'] == 'rebuild_indexes':
        for folder in sorted(plan.uidlist_changed):
            plan.remove_index(folder, dst.index_files.get(folder, ()), FOLDER_INDEX_RE)
            top = top_maildir(folder, dst.maildirs)
            plan.remove_index(top, dst.index_files.get(top, ()), ROOT_INDEX_RE)
    return plan


def _prefixed(folder, cur, new):
    p = folder + '/' if folder else ''
    return sorted([p + 'cur/' + n for n in cur] + [p + 'new/' + n for n in new])


def plan_messages(plan, src, dst, opts):
    """Compare the two listings folder by folder; only the differences are looked at by name.

    Messages never change once written (Maildir): a name the target has is the same message, so
    the copy is planned here, from the names, and rsync copies exactly the planned files.
    """
    sep = opts['flag_separator']
    empty = (frozenset(), frozenset())
    for folder in sorted(src.messages):
        s_cur, s_new = src.messages[folder]
        t_cur, t_new = dst.messages.get(folder, empty)
        if folder not in dst.maildirs:
            plan.new_dirs += [join(folder, 'cur'), join(folder, 'new')]
        os_cur, os_new = s_cur - t_cur, s_new - t_new
        ot_cur, ot_new = t_cur - s_cur, t_new - s_new
        if not (os_cur or os_new or ot_cur or ot_new):
            continue
        copies = _prefixed(folder, os_cur, os_new)
        if not (ot_cur or ot_new):
            plan.copies += copies
            plan.touched.add(folder)
            continue
        before = (len(plan.duplicates), len(plan.deletions))
        skip = len(folder) + 1 if folder else 0
        s_by_base = {}
        for n in copies:
            s_by_base.setdefault(base_name(n[skip:], sep), []).append(n)
        t_by_base = {}
        for n in _prefixed(folder, ot_cur, ot_new):  # cur/ first: the copy Dovecot has seen is renamed
            t_by_base.setdefault(base_name(n[skip:], sep), []).append(n)
        renamed_to = set()
        all_s_bases = None
        for b, ts in sorted(t_by_base.items()):
            if b in s_by_base:
                new = s_by_base[b][0]
                plan.renames.append((ts[0], new))
                renamed_to.add(new)
                plan.duplicates.extend(ts[1:])
                continue
            if all_s_bases is None:
                all_s_bases = set(n.split(sep, 1)[0] for n in s_cur)
                all_s_bases.update(n.split(sep, 1)[0] for n in s_new)
            if b in all_s_bases:
                plan.duplicates.extend(ts)
            elif opts['delete']:
                plan.deletions.extend(ts)
        copies = [n for n in copies if n not in renamed_to]
        plan.copies += copies
        if copies or (len(plan.duplicates), len(plan.deletions)) != before:
            plan.touched.add(folder)  # not for renames alone: the message count stays
    if opts['delete']:
        # Maildirs the source no longer has: their messages go (rsync removes the rest)
        for folder in sorted(set(dst.messages) - set(src.messages)):
            t_cur, t_new = dst.messages[folder]
            if t_cur or t_new:
                plan.touched.add(folder)
                plan.deletions += _prefixed(folder, t_cur, t_new)
    if opts['dovecot_files'] == 'rebuild_indexes':
        # changed messages make the mailbox's Maildir++ quota file and list index stale
        for top in sorted(set(top_maildir(f, dst.maildirs) for f in plan.touched if f in dst.maildirs)):
            plan.remove_index(top, dst.index_files.get(top, ()), ROOT_INDEX_RE)
    return plan


def make_plan(src, dst, opts):
    return plan_messages(plan_uidlists(Plan(), src, dst, opts), src, dst, opts)
