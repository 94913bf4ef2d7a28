#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: maildir_sync
short_description: Mirror Maildir trees between two hosts with rsync without ever losing mail
version_added: 0.1.0
description:
  - Copies a Maildir, or a tree of Maildirs such as a mail root C(/var/vmail/<domain>/<user>/Maildir),
    from O(src) to O(dest) with rsync. One of the two may be on another host (C([user@]host:/path));
    rsync then runs on the host that runs the module and talks to the other one over SSH, so the
    mail goes directly between the two hosts and never through the controller. Run the task on
    either host (O(dest) remote - push, O(src) remote - pull).
  - A Maildir is any directory with both C(cur/) and C(new/). Every Maildir below O(src) is synced,
    Maildir++ folders (C(.Sent/)) and C(LAYOUT=fs) folders alike.
  - Messages that exist only on the target are never removed, unless O(delete=true).
  - A message is identified by its unique base name, the file name before the flag separator
    (O(flag_separator)), within its folder. When the source renamed a message (new flags, or moved
    from C(new/) to C(cur/)), the target ends with exactly one copy, under the source's name - the
    target's copy is renamed before rsync runs, so the message is never copied again. Further
    target copies of a message the source has (left by an earlier plain rsync) are removed
    (RV(duplicates_removed)).
  - What C(tmp/) directories hold is never copied (the directories themselves are, empty) - those
    files are still being written.
  - A message file never changes once written (the Maildir rule), so a message whose name the
    target has is not compared again. The module lists the message names of both trees (names only,
    no C(stat)), and rsync copies exactly the messages the target lacks (C(--files-from)); a second
    rsync run brings the rest of the tree - folders, C(dovecot-uidlist), C(subscriptions) and other
    control files - without looking into C(cur/) or C(new/). Files identical on both sides (size and
    modification time) are not sent. This is why an incremental run of a large tree costs about what
    a bare C(rsync -a) costs (C(docs/performance.md)).
    Permissions, ownership (numeric ids) and modification times are kept; directory times are not,
    so the target's Dovecot notices new files.
  - Dovecot files are handled by O(dovecot_files).
  - Validation comes before anything is touched - a missing source, a source without Maildirs, a
    target that is not a Maildir tree (or at a different level than the source), an unreachable peer
    fail with a message naming the option or host, and nothing is changed.
  - An empty O(src) directory (a new server before its first delivery) is not an error when
    O(delete=false) - nothing is copied, the result says so in a warning. With O(delete=true) it is an
    error - an empty source (say, a store that is not mounted) must never empty the target.
  - RV(ignore:changed) is true only when files were copied, renamed, removed or directories created.
  - Why a module of our own - M(ansible.posix.synchronize) would copy a renamed message a second
    time (or, with C(delete), remove mail that arrived only on the target), copies C(tmp/) and
    Dovecot's indexes, and reports no counts.
  - The logic lives in the module utilities C(maildir_sync_*.py); C(maildir_sync.py) beside them is a standalone
    program for hosts without Ansible (a systemd timer) - C(python3 maildir_sync.py --config sync.json [--check]),
    with the options of this module as a JSON object; it prints the result as one line of JSON.
options:
  src:
    description:
      - The source tree - a local absolute path or C([user@]host:/absolute/path).
      - Either a single Maildir or a directory containing Maildirs at any depth.
      - At most one of O(src) and O(dest) may be remote.
    type: str
    required: true
  dest:
    description:
      - The target tree, at the same level as O(src) (both Maildirs, or both directories of Maildirs);
        a local absolute path or C([user@]host:/absolute/path).
      - It must exist and hold a Maildir, unless O(create_dest=true).
    type: str
    required: true
  delete:
    description:
      - Remove what the source does not have from the target - messages expunged (or moved to another
        folder, which gives them a new name) on the source, and mail that was delivered only to the
        target. Excluded files (C(tmp/), Dovecot indexes, O(excludes)) are never removed.
      - With V(false) the target keeps every message it ever received.
    type: bool
    default: false
  dovecot_files:
    description:
      - What happens to Dovecot's own files.
      - V(rebuild_indexes) - the index files (C(dovecot.index*), C(dovecot.list.index*),
        C(dovecot.mailbox.log*)) and the Maildir++ quota file C(maildirsize) are not copied; Dovecot
        rebuilds them from the Maildir. The control files C(dovecot-uidlist) and C(dovecot-keywords)
        are copied, so IMAP UIDs and keyword names survive a failover. In every folder whose messages
        or C(dovecot-uidlist) change on the target, the target's own index files (and the list index
        and C(maildirsize) of its mailbox) are removed first, so that its Dovecot rebuilds them and
        never serves cached data recorded for other UIDs (RV(indexes_rebuilt)).
      - V(exclude_indexes) - as V(rebuild_indexes), but the target's index files are left as they are.
      - V(exclude_all) - no C(dovecot*) file and no C(maildirsize) is copied; the target's Dovecot
        assigns its own UIDs (IMAP clients download the mail again after a failover).
      - V(copy) - copy everything, indexes included; only for a copy taken while Dovecot is stopped
        on the source.
      - Lock files (C(dovecot*.lock)) are never copied.
    type: str
    choices: [rebuild_indexes, exclude_indexes, exclude_all, copy]
    default: rebuild_indexes
  excludes:
    description:
      - More rsync exclude patterns, relative to the top of O(src) (for example V(.Junk/) or
        V(/example.org/olduser/)). The same patterns apply when the module lists the trees, with
        rsync's rules - C(*), C(**), C(?), C([...]), a leading C(/) anchors at the top, a trailing
        C(/) matches directories only.
      - Plain patterns only, without filter-rule prefixes such as C(+ ) or C(- ).
    type: list
    elements: str
    default: []
  bwlimit:
    description:
      - Bandwidth limit in KiB per second (rsync C(--bwlimit)); V(0) means no limit.
    type: int
    default: 0
  compress:
    description:
      - Compress data in transit (rsync C(--compress)); worth it on slow links only.
    type: bool
    default: false
  create_dest:
    description:
      - Allow a first copy into an O(dest) that does not exist (it is created, with its parents) or is
        empty. Without it such a target is an error, to catch a wrong path.
    type: bool
    default: false
  chown:
    description:
      - Owner of the copied files on the target as C(USER), C(USER:GROUP) or C(:GROUP) (rsync C(--chown)),
        for when the mail user (C(vmail)) has different ids on the two hosts. Without it the numeric
        ids are kept, which needs the same ids on both hosts and rsync running as root on the target.
    type: str
  flag_separator:
    description:
      - The character between a message's unique name and its flags (C(<unique>:2,<flags>)); Dovecot's
        C(maildir_info_separator), V(:) unless changed.
    type: str
    default: ':'
  ssh_user:
    description:
      - User to log in as on the remote host, when O(src) or O(dest) does not name one.
    type: str
  ssh_port:
    description:
      - SSH port of the remote host.
    type: int
  ssh_private_key:
    description:
      - Private key for the SSH login, on the host that runs the module.
    type: path
  ssh_options:
    description:
      - Extra C(ssh_config) options, each as C(Option=value), for example
        V(StrictHostKeyChecking=accept-new) or V(UserKnownHostsFile=/etc/mailstack/known_hosts).
      - SSH runs with C(BatchMode=yes) - it never asks for a password or to accept a host key.
    type: list
    elements: str
    default: []
  timeout:
    description:
      - Seconds - SSH connection timeout and rsync I/O timeout (C(--timeout)); V(0) disables both.
    type: int
    default: 60
  rsync_path:
    description:
      - The rsync program on the remote host, for example V(sudo rsync) (rsync C(--rsync-path)).
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: rsync runs with C(--dry-run); renames and removals are counted, not done; the counts are those of a real run.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - rsync on both hosts, C(ssh) on the host that runs the module and C(find) (GNU findutils) and C(sh) on the remote host.
notes:
  - A run opens two to five SSH connections to the remote host - the listing, the renames and removals
    when there are any, the two rsync runs (the first only when messages are to be copied), and with
    O(delete) the removal of target-only messages after the copy. Use O(ssh_options)
    C(ControlMaster)/C(ControlPersist) to share one.
  - Messages are matched within one folder; a message moved to another folder gets a new name and is
    new mail there. Without O(delete) the target keeps the copy in the old folder.
  - Flags follow the source - the source's name wins when the two copies differ.
  - A message renamed on the source while the run lists or copies is reported in RV(vanished) and put
    right by the next run.
  - The target should not be serving the same mailboxes at the same time (a standby).
seealso:
  - module: ansible.posix.synchronize
  - name: Dovecot Maildir format - control files and index files
    description: Which files carry UIDs and keywords and which can be rebuilt.
    link: https://doc.dovecot.org/2.3/configuration_manual/mail_location/Maildir/
author:
  - mailstack developers (@mailops)
'''

EXAMPLES = r'''
- name: Mirror the primary's mailboxes to the backup MX (pull, run on the backup)
  mailops.mailstack.maildir_sync:
    src: vmail-sync@mx1.example.org:/var/vmail
    dest: /var/vmail
    ssh_private_key: /etc/mailstack/sync_ed25519
    ssh_options:
      - UserKnownHostsFile=/etc/mailstack/known_hosts
    bwlimit: 20000
  register: mirror

- name: The same, pushed from the primary, and removing what the primary removed
  mailops.mailstack.maildir_sync:
    src: /var/vmail
    dest: root@mx2.example.org:/var/vmail
    delete: true
  delegate_to: mx1.example.org

- name: What would a sync of one mailbox change (dry run)
  mailops.mailstack.maildir_sync:
    src: /var/vmail/example.org/alice/Maildir
    dest: mx2.example.org:/var/vmail/example.org/alice/Maildir
    ssh_user: root
  check_mode: true

- name: First copy onto a new store, without Dovecot's files, skipping the Junk folders
  mailops.mailstack.maildir_sync:
    src: /var/vmail
    dest: store3.example.org:/srv/vmail
    create_dest: true
    dovecot_files: exclude_all
    excludes: [.Junk/]
    chown: vmail:vmail
'''

RETURN = r'''
new:
  description: Messages copied that the target did not have (or would be, in check mode).
  returned: always
  type: int
  sample: 500
flag_changes:
  description: Target copies renamed to the source's name (changed flags, or moved from new/ to cur/).
  returned: always
  type: int
  sample: 500
duplicates_removed:
  description: Extra target copies of a message the source has under one name, removed.
  returned: always
  type: int
  sample: 0
updated:
  description: Messages rsync found on the target under the same name after all - copied by something else
    between the listing and the copy, and brought up to date. Normally V(0).
  returned: always
  type: int
  sample: 0
deleted:
  description: Target messages the source does not have, removed (only with O(delete=true)).
  returned: always
  type: int
  sample: 0
unchanged:
  description: Messages already on the target under the same name and not updated.
  returned: always
  type: int
  sample: 99000
other_files:
  description: Other files copied, updated or removed (C(dovecot-uidlist), C(subscriptions), ...),
    and directories whose attributes changed.
  returned: always
  type: int
  sample: 12
dirs_created:
  description: Directories created on the target (new folders or mailboxes).
  returned: always
  type: int
  sample: 0
indexes_rebuilt:
  description: Target index, list index and quota files removed for Dovecot to rebuild
    (O(dovecot_files=rebuild_indexes)).
  returned: always
  type: int
  sample: 3
vanished:
  description: Source files that disappeared between the listing and the copy (see notes).
  returned: always
  type: int
  sample: 0
bytes_transferred:
  description: Total size of the files copied or updated; with delta transfer and compression the
    network carries less.
  returned: always
  type: int
  sample: 1048576
messages_source:
  description: Messages in the source tree (outside excluded paths).
  returned: always
  type: int
  sample: 100000
maildirs_source:
  description: Maildir folders in the source tree.
  returned: always
  type: int
  sample: 500
direction:
  description: V(push) (O(dest) remote), V(pull) (O(src) remote) or V(local).
  returned: always
  type: str
  sample: pull
cmd:
  description: The rsync commands that ran, joined by C(&&) - the messages run (when messages were copied)
    and the tree run. They hold no secret.
  returned: always
  type: str
  sample: "/usr/bin/rsync --archive --omit-dir-times --numeric-ids ... mx1.example.org:/var/vmail/ /var/vmail"
rc:
  description: The highest exit code of the rsync runs. V(24) (a source file vanished) and V(23) when the only
    errors were source files gone between the listing and the copy count as success (RV(vanished)).
  returned: always
  type: int
  sample: 0
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailops.mailstack.plugins.module_utils.maildir_sync_options import SyncError, argument_spec
from ansible_collections.mailops.mailstack.plugins.module_utils.maildir_sync_run import sync


def main():
    # AnsibleModule checks and converts the options' types; sync() checks the rest.
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    error = None
    try:
        result = sync(module.params, check_mode=module.check_mode)
    except SyncError as e:
        error = e
    if error is not None:  # outside the except block: a user error, not a traceback
        error.result.setdefault('changed', False)
        module.fail_json(msg=str(error), **error.result)
    for warning in result.pop('warnings', ()):
        module.warn(warning)
    result.pop('check_mode', None)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
