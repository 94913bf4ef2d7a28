"""The mail database side of mailbox_move (module_utils/mailbox_move_db.py)
against a real MariaDB: a finished record is never overwritten, two starts of
one user's move at once give one record, the lock's owner and expiry, and a
state change with the mailbox's host and hold in one transaction."""

import pytest

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
    assert moves.other_maildirs(EMAIL) == ['example.org/b/']
