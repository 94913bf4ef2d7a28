"""The mail database side of mailbox_move (module_utils/mailbox_move_db.py)
against a real MariaDB: a finished record is never overwritten, two starts of
one user's move at once give one record, the lock's owner and expiry, a
state change with the mailbox's host and hold in one transaction, and the
other maildirs near a user's (schema 6, from the index): every one that
copy_path refuses the user's path for is found, in any form."""

import random
import sys

import pytest

from ansible_collections.mailops.mailstack.plugins.module_utils import mailbox_move_fs as fs
from ansible_collections.mailops.mailstack.plugins.module_utils.mailbox_move_db import MoveDB
from mailstack_testlib.mariadb import DB_NAME

EMAIL = 'a@example.org'


@pytest.fixture
def moves(db):
    db.execute("INSERT INTO domain (name, kind, active) VALUES ('example.org', 'local', 1)")
    db.execute("INSERT INTO mailbox_host (name, address) VALUES ('ms1', '10.0.0.1'), ('ms2', '10.0.0.2')")
    db.execute("INSERT INTO mailbox (email, local_part, domain, password, quota, mailbox_host, maildir) "
               "VALUES (%s, 'a', 'example.org', '{PLAIN}x', 1024, 'ms1', 'example.org/a/'), "
               "('b@example.org', 'b', 'example.org', '{PLAIN}x', 1024, 'ms1', 'example.org/b/')", (EMAIL,))
    return MoveDB(db.server.root(DB_NAME))


def test_a_second_start_is_refused_naming_the_owner_and_changes_nothing(moves, db):
    assert moves.start(EMAIL, 'ms1', 'ms2', 'ms2:100', 900) is None
    other = MoveDB(db.server.root(DB_NAME))
    holder = other.start(EMAIL, 'ms1', 'ms2', 'ms2:200', 900)
    assert holder[0] == 'ms2:100' and holder[1] is not None
    assert moves.move(EMAIL)['owner'] == 'ms2:100'


def test_a_finished_record_is_never_overwritten(moves):
    moves.start(EMAIL, 'ms1', 'ms2', 'ms2:100', 900)
    moves.set_state(EMAIL, 'done', host='ms2', hold=0, source_status='[["INBOX", "1"]]')
    moves.unlock(EMAIL, 'ms2:100')
    moves.start(EMAIL, 'ms2', 'ms1', 'ms1:5', 900)
    move = moves.move(EMAIL)
    assert (move['source'], move['target'], move['state'], move['source_status']) == \
        ('ms1', 'ms2', 'done', '[["INBOX", "1"]]')


def test_the_lock_is_refused_while_held_and_taken_when_expired_or_dead(moves, db):
    moves.start(EMAIL, 'ms1', 'ms2', 'ms2:100', 900)
    assert moves.lock(EMAIL, 'ms2:100', 900) is None  # renewed by its owner
    assert moves.lock(EMAIL, 'ms2:200', 900)[0] == 'ms2:100'
    assert moves.lock(EMAIL, 'ms2:200', 900, dead='ms2:100') is None
    assert moves.lock(EMAIL, 'ms2:300', 900)[0] == 'ms2:200'
    db.execute("UPDATE mailbox_move SET lock_until = NOW() - INTERVAL 1 SECOND WHERE email = %s", (EMAIL,))
    assert moves.lock(EMAIL, 'ms2:300', 900) is None
    moves.unlock(EMAIL, 'ms2:300')
    assert moves.holder(EMAIL) == (None, None)


def test_a_state_change_flips_and_holds_in_one_transaction(moves, db):
    moves.start(EMAIL, 'ms1', 'ms2', 'ms2:100', 900)
    moves.save(EMAIL, sync_state='STATE1')
    moves.set_state(EMAIL, 'held', host='ms2', hold=30)
    host, seconds = db.query("SELECT mailbox_host, TIMESTAMPDIFF(SECOND, NOW(), hold_until) FROM mailbox "
                             "WHERE email = %s", (EMAIL,))[0]
    assert host == 'ms2' and 28 <= seconds <= 30
    assert moves.move(EMAIL)['sync_state'] == 'STATE1'
    # A failing statement rolls the whole change back.
    with pytest.raises(Exception):
        moves.set_state(EMAIL, 'no-such-state', host='ms1', hold=0)
    assert moves.move(EMAIL)['state'] == 'held' and moves.mailbox(EMAIL)[0] == 'ms2'
    moves.set_state(EMAIL, None, hold=0)
    assert moves.move(EMAIL) is None and db.scalar("SELECT hold_until FROM mailbox WHERE email = %s", (EMAIL,)) is None
    # b's maildir is under example.org/, not near example.org/a/
    assert moves.other_maildirs(EMAIL, 'example.org/') == ['example.org/b/']
    assert moves.other_maildirs(EMAIL, 'example.org/a/') == []


# -- the other maildirs near a user's (schema 6: from the index) ----------------

def _add(db, maildirs):
    """Users o0@example.org.. with these maildirs."""
    for i, maildir in enumerate(maildirs):
        db.execute("INSERT INTO mailbox (email, local_part, domain, password, mailbox_host, maildir) "
                   "VALUES (%s, %s, 'example.org', '{PLAIN}x', 'ms1', %s)", ('o%d@example.org' % i, 'o%d' % i, maildir))


def _refused(root, maildir, others):
    """copy_path's verdict: the message when it refuses the path because of
    another mailbox, None when it accepts it."""
    try:
        fs.copy_path(EMAIL, str(root), maildir, others)
    except fs.CopyPathError as e:
        assert 'holds another mailbox' in str(e), e
        return str(e)
    return None


# The same path, a parent, a child, each also in forms the index reads whole
# (maildir_odd: //, ./, a leading /, whitespace at either end, a .. that
# comes back).
HOLDING = ['example.org/a/', 'example.org/a', 'example.org/', 'example.org', 'example.org/a/sub/', 'example.org/a/x/y',
           'example.org//a/', './example.org/a', '/example.org/', ' example.org/a/', 'example.org/a/\t',
           'example.org/a/\u3000', 'x/../example.org/a/', 'example.org/./a/sub']
# Not the path, nor above or below it: the cleanup goes on.
APART = ['example.org/ab/', 'example.org/a b/', 'example.org/a_/', 'example.org/b/', 'Example.org/A/', 'other/a/']


@pytest.mark.parametrize('other', HOLDING)
def test_a_path_holding_another_mailbox_is_refused(moves, db, tmp_path, other):
    _add(db, [other])
    found = moves.other_maildirs(EMAIL, 'example.org/a/')
    assert other in found
    assert _refused(tmp_path, 'example.org/a/', found)


@pytest.mark.parametrize('other', APART)
def test_a_path_apart_from_the_others_is_accepted(moves, db, tmp_path, other):
    _add(db, [other])
    found = moves.other_maildirs(EMAIL, 'example.org/a/')
    assert _refused(tmp_path, 'example.org/a/', found) is None
    # from the index: only the case-insensitive match comes back (copy_path,
    # case-sensitive, accepts it)
    assert found == (['Example.org/A/'] if other == 'Example.org/A/' else [])


def test_every_maildir_copy_path_refuses_is_found(moves, db, tmp_path):
    """Against copy_path itself: 600 maildirs of random characters (/, .,
    whitespace, LIKE's wildcards, case, non-ASCII); for each as the user's,
    every other that copy_path refuses it for is among other_maildirs'."""
    rnd = random.Random(6)
    alphabet = ['a', 'b', 'A', '/', '/', '/', '.', '.', ' ', '\t', '\n', '\u3000', '\xa0', 'é', 's', 'ß', '%', '_',
                '\\']
    maildirs = [''.join(rnd.choice(alphabet) for _char in range(rnd.randint(1, 7))) for _path in range(600)]
    _add(db, maildirs)
    emails = ['o%d@example.org' % i for i in range(len(maildirs))]
    checked = 0
    for email, maildir in zip(emails, maildirs):
        rel = fs._relative(maildir)
        if not rel or rel == '..' or rel.startswith('../'):
            continue  # refused whatever the others
        found = MoveDB(moves.conn).other_maildirs(email, maildir)
        for other_email, other in zip(emails, maildirs):
            if other_email != email and _refused(tmp_path, maildir, [other]):
                assert other in found, (maildir, other, found)
                checked += 1
    assert checked > 1000


def test_maildir_odd_marks_python_whitespace_at_either_end(moves, db):
    """Each character str.strip removes, at the start or the end of a
    maildir, makes it odd (read whole); a plain maildir is not."""
    spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    _add(db, ['%sx/' % c for c in spaces] + ['x%s' % c for c in spaces] + ['x/y/', 'x y/z', 'x...', '.x/'])
    odd = dict(db.query('SELECT maildir, maildir_odd FROM mailbox WHERE email LIKE %s', ('o%',)))
    assert [c for c in spaces if odd['%sx/' % c] != 1 or odd['x%s' % c] != 1] == []
    assert [odd[m] for m in ('x/y/', 'x y/z', 'x...', '.x/')] == [0, 0, 0, 0]


def test_other_maildirs_reads_the_index_only(moves, db):
    """The plan: a range of the index (maildir_odd, maildir), no row read."""
    _add(db, ['example.org/u%d/' % i for i in range(300)])
    db.execute('ANALYZE TABLE mailbox')
    seen = []

    class Capture(object):
        def cursor(self):
            return self

        def execute(self, sql, args=None):
            seen.append((sql, args))

        def fetchall(self):
            return ()

        def close(self):
            pass
    MoveDB(Capture()).other_maildirs(EMAIL, 'example.org/u7/')
    plan = db.query('EXPLAIN ' + seen[0][0], seen[0][1])
    assert [(r[2], r[3], r[5]) for r in plan] == [('mailbox', 'range', 'mailbox_maildir')], plan
    assert 'Using index' in plan[0][9], plan
