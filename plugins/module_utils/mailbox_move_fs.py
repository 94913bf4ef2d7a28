# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The copy of a mailbox on disk, for mailbox_move: which path is one user's
copy and nothing else, and its removal (renamed aside first, so no Dovecot
process ever reads a half-deleted Maildir, and a removal cut short is found
and finished by the next run)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import shutil

ASIDE = '.mailbox_move-removing'


class CopyPathError(Exception):
    pass


def _relative(maildir):
    rel = os.path.normpath((maildir or '').strip().strip('/'))
    return '' if rel == '.' else rel


def copy_path(email, mail_root, maildir, others):
    """The path of email's copy (<mail_root>/<maildir>), refused when it is not
    a mailbox of its own: empty, outside mail_root, or holding (or inside)
    another user's mailbox (others: the other users' maildirs)."""
    rel = _relative(maildir)
    if not rel or rel == '..' or rel.startswith('../'):
        raise CopyPathError('%s: maildir %r is not a path under mail_root' % (email, maildir))
    root = os.path.realpath(mail_root)
    path = os.path.join(root, rel)
    if not os.path.realpath(path).startswith(root + os.sep):
        raise CopyPathError('%s: maildir %r is outside mail_root %s' % (email, maildir, mail_root))
    for other in others:
        o = _relative(other)
        if o and (o == rel or o.startswith(rel + '/') or rel.startswith(o + '/')):
            raise CopyPathError('%s: %s holds another mailbox (maildir %r), not only this user\'s; '
                                'nothing removed' % (email, path, other))
    return path


def remove_copy(path):
    """Rename path aside, then delete it; True when something was removed.
    A removal cut short (the aside left) is finished here."""
    aside = path.rstrip('/') + ASIDE
    if os.path.lexists(path):
        if os.path.lexists(aside):
            shutil.rmtree(aside)
        os.rename(path, aside)
    if not os.path.lexists(aside):
        return False
    shutil.rmtree(aside)
    return True


def exists(path):
    return os.path.lexists(path)
