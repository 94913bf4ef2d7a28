"""The state machine of mailbox_move against a fake mail database and fake
Dovecot servers (mailboxes as lists of Message-IDs), the disk real: every
state's resume and abort, a second run, the lock, the final step that waits
for no session and a quiet pass, a proxy that is down, the cleanup's
refusals, and a run killed at every write, then resumed."""

import json
import os
import sys

import pytest

from ansible_collections.mailops.mailstack.plugins.module_utils import mailbox_move_fs as fs
from ansible_collections.mailops.mailstack.plugins.module_utils.mailbox_move_dovecot import DsyncError
from ansible_collections.mailops.mailstack.plugins.module_utils.mailbox_move_machine import MoveError, Mover
from ansible_collections.mailops.mailstack.plugins.module_utils.replica_wait import ReplicaLagError

sys.path.insert(0, os.path.dirname(__file__))
from mailbox_move_fakes import EMAIL, HOSTS, Clock, Crash, FakeDB, FakeDovecot  # noqa: E402

MS1, MS2 = HOSTS["ms1"], HOSTS["ms2"]
PROXIES = ["10.0.0.31", "10.0.0.32"]


def params(tmp_path, **extra):
    p = dict(target="ms2", proxies=PROXIES, hold_timeout=30, quiet_timeout=5, max_syncs=5, lock_seconds=900,
             abort=False, cleanup=False, mail_root=str(tmp_path), run_seconds=0)
    p.update(extra)
    return p


class World(object):
    def __init__(self, tmp_path, messages=5):
        self.tmp_path = tmp_path
        self.clock = Clock()
        self.db = FakeDB(self.clock)
        self.boxes = {MS1: ["<m%d@x>" % i for i in range(messages)], MS2: []}
        self.dead = set()
        # What the replicas answer (replica_wait.wait_replicas: its warnings,
        # or a text: ReplicaLagError): each call
        # is noted with the mailbox's host, its hold and the Dovecot calls so far.
        self.replica_answers = []
        self.replica_calls = []

    def replicas(self):
        self.replica_calls.append((self.db.mailboxes[EMAIL][0], self.db.hold.get(EMAIL),
                                   len(self.dovecot.calls), [c[0] for c in self.dovecot.calls]))
        answer = self.replica_answers.pop(0) if self.replica_answers else []
        if isinstance(answer, str):  # a replica behind
            raise ReplicaLagError(answer)
        return answer

    def mover(self, local=MS2, owner="ms2:100", check_mode=False, **extra):
        self.dovecot = FakeDovecot(self.boxes, local)
        return Mover(EMAIL, params(self.tmp_path, **extra), self.db, self.dovecot, fs,
                     is_local=lambda address: address == local, owner=owner,
                     owner_alive=lambda owner: owner not in self.dead, check_mode=check_mode,
                     clock=self.clock, sleep=self.clock.sleep, replicas=self.replicas)

    def run(self, **kw):
        return self.mover(**kw).run()

    def copy_dir(self, name="carol"):
        path = self.tmp_path / "example.test" / name
        (path / "Maildir" / "cur").mkdir(parents=True, exist_ok=True)
        return path


@pytest.fixture
def world(tmp_path):
    return World(tmp_path)


def test_a_move_copies_flips_and_releases(world):
    result = world.run()
    assert result["outcome"] == "moved" and result["changed"] and result["target"] == "ms2"
    assert world.db.mailboxes[EMAIL][0] == "ms2" and world.db.hold[EMAIL] is None
    assert world.db.moves[EMAIL]["state"] == "done" and world.db.moves[EMAIL]["owner"] is None
    assert world.boxes[MS2] == world.boxes[MS1]
    # Both copy passes and the final sync keep dsync's state: each starts from the last one's.
    dsyncs = [c for c in world.dovecot.calls if c[0] in ("backup", "sync")]
    assert [c[0] for c in dsyncs] == ["backup", "backup", "sync"]
    assert dsyncs[0][2] == "" and all(c[2] for c in dsyncs[1:])
    assert json.loads(world.db.moves[EMAIL]["source_status"]) == world.dovecot.status(MS1)


def test_the_hold_lasts_hold_timeout_and_the_flip_is_one_write(world):
    mover = world.mover()
    flips = []
    real = world.db.set_state

    def spy(email, state, host=None, hold=None, **saved):
        flips.append((state, host, hold, dict(world.db.hold)))
        return real(email, state, host=host, hold=hold, **saved)
    world.db.set_state = spy
    mover.run()
    assert flips[0][:3] == ("held", "ms2", 30)
    assert flips[1][:3] == ("done", None, 0)


def test_the_replicas_apply_the_record_before_the_flip_and_the_flip_before_any_kick(world):
    world.run()
    before, after = world.replica_calls
    assert before[:2] == ("ms1", None) and before[3] == ["backup", "backup"]
    # After the flip and hold, before the first kick (and sync).
    assert after[0] == "ms2" and after[1] is not None and "kick" not in after[3] and "sync" not in after[3]


def test_a_replica_behind_after_the_flip_fails_the_move_still_held_naming_it(world):
    world.replica_answers = [[], "the commit 0-1-9 on the primary: db2 has not applied it"]
    with pytest.raises(MoveError, match="db2 has not applied it.*still held"):
        world.run()
    assert world.db.moves[EMAIL]["state"] == "held" and world.db.hold[EMAIL] is not None
    assert world.db.mailboxes[EMAIL][0] == "ms2"
    assert not [c for c in world.dovecot.calls if c[0] in ("kick", "proxy kick", "sync")]
    # Caught up: a rerun resumes (waiting again first) and finishes.
    assert world.run()["outcome"] == "resumed" and world.db.moves[EMAIL]["state"] == "done"
    assert world.replica_calls[-1][0] == "ms2" and "kick" not in world.replica_calls[-1][3]


def test_a_replica_behind_before_the_flip_fails_the_move_without_a_hold(world):
    world.replica_answers = ["db2 has not applied it"]
    with pytest.raises(MoveError, match="db2 has not applied it; not held, nothing changed"):
        world.run()
    assert world.db.moves[EMAIL]["state"] == "copying" and not world.db.hold.get(EMAIL)
    assert world.db.mailboxes[EMAIL][0] == "ms1"


def test_a_replica_that_is_down_is_reported_and_the_move_goes_on(world):
    world.replica_answers = [[], ["replica db2 is down (refused)"]]
    mover = world.mover()
    result = mover.run()
    assert result["outcome"] == "moved" and "replica db2 is down (refused)" in result["warnings"]


def test_an_abort_from_held_waits_for_the_flip_back_before_the_kick(world):
    world.boxes[MS2] = list(world.boxes[MS1])
    world.db.mailboxes[EMAIL][0] = "ms2"
    world.db.moves[EMAIL] = dict(source="ms1", target="ms2", state="held", owner=None, lock_until=None,
                                 sync_state="s2", source_status=None)
    world.copy_dir()
    world.replica_answers = ["db2 has not applied it"]
    with pytest.raises(MoveError, match="still held"):
        world.run(abort=True)
    assert world.replica_calls[0][0] == "ms1" and "kick" not in world.replica_calls[0][3]
    assert world.db.moves[EMAIL]["state"] == "held" and world.db.mailboxes[EMAIL][0] == "ms1"


def test_a_second_run_of_a_finished_move_changes_nothing(world):
    world.run()
    before = (json.dumps(world.db.moves), list(world.boxes[MS2]), world.db.writes)
    result = world.run()
    assert not result["changed"] and result["outcome"] == "none"
    assert world.dovecot.calls == []
    assert (json.dumps(world.db.moves), list(world.boxes[MS2]), world.db.writes) == before


def test_check_mode_reports_the_plan_and_changes_nothing(world):
    result = world.run(check_mode=True)
    assert result["changed"] and result["messages"] == 5 and result["target"] == "ms2"
    assert world.db.moves == {} and world.db.writes == 0 and world.boxes[MS2] == []


def test_resume_from_copying(world):
    world.db.moves[EMAIL] = dict(source="ms1", target="ms2", state="copying", owner=None, lock_until=None,
                                 sync_state="s1", source_status=None)
    result = world.run()
    assert result["outcome"] == "resumed" and world.db.moves[EMAIL]["state"] == "done"
    assert world.dovecot.calls[0] == ("backup", MS1, "s1")
    assert world.boxes[MS2] == world.boxes[MS1]


def test_resume_from_held_syncs_two_way(world):
    world.boxes[MS2] = list(world.boxes[MS1])
    world.boxes[MS1].append("<late-on-source@x>")
    world.db.mailboxes[EMAIL][0] = "ms2"
    world.db.moves[EMAIL] = dict(source="ms1", target="ms2", state="held", owner=None, lock_until=None,
                                 sync_state="s2", source_status=None)
    result = world.run()
    assert result["outcome"] == "resumed" and "<late-on-source@x>" in world.boxes[MS2]
    assert not [c for c in world.dovecot.calls if c[0] == "backup"]
    assert world.db.moves[EMAIL]["state"] == "done" and world.db.hold[EMAIL] is None


def test_abort_from_copying_removes_the_targets_copy(world):
    world.db.moves[EMAIL] = dict(source="ms1", target="ms2", state="copying", owner=None, lock_until=None,
                                 sync_state="s1", source_status=None)
    copy = world.copy_dir()
    result = world.run(abort=True)
    assert result["outcome"] == "aborted" and result["removed"] == str(copy)
    assert not copy.exists() and EMAIL not in world.db.moves and world.db.mailboxes[EMAIL][0] == "ms1"


def test_abort_from_held_flips_back_syncs_then_removes_the_copy(world):
    world.boxes[MS2] = list(world.boxes[MS1]) + ["<saved-on-target@x>"]
    world.db.mailboxes[EMAIL][0] = "ms2"
    world.db.moves[EMAIL] = dict(source="ms1", target="ms2", state="held", owner=None, lock_until=None,
                                 sync_state="s2", source_status=None)
    world.dovecot_sessions = None
    copy = world.copy_dir()
    mover = world.mover(abort=True)
    world.dovecot.sessions[MS2] = 1
    result = mover.run()
    assert result["outcome"] == "aborted" and not copy.exists()
    assert "<saved-on-target@x>" in world.boxes[MS1]
    assert world.db.mailboxes[EMAIL][0] == "ms1" and world.db.hold[EMAIL] is None and EMAIL not in world.db.moves
    assert ("kick", MS2) in world.dovecot.calls


def test_abort_with_nothing_unfinished_changes_nothing(world):
    assert world.run(abort=True)["outcome"] == "none" and world.db.writes == 0


def test_a_finished_uncleaned_record_is_never_overwritten(world):
    world.run()
    record = dict(world.db.moves[EMAIL])
    with pytest.raises(MoveError, match="move from ms1 to ms2 left on ms1 is not removed yet"):
        world.run(local=MS1, target="ms1")
    assert world.db.moves[EMAIL] == record and world.db.mailboxes[EMAIL][0] == "ms2"


def test_two_starts_at_once_the_second_is_refused_naming_the_owner(world):
    first = world.mover(owner="ms2:100")
    first.load()
    world.db.start(EMAIL, "ms1", "ms2", "ms2:100", 900)  # the first run's record, inserted meanwhile
    second = world.mover(owner="ms2:200")
    second.load = lambda: (Mover.load(second), setattr(second, "move", None))
    with pytest.raises(MoveError, match=r"carol@example.test: another run is moving this mailbox: "
                                        r"the lock is held by ms2:100"):
        second.run()
    assert world.db.moves[EMAIL]["owner"] == "ms2:100"


@pytest.mark.parametrize("state", ["copying", "held"])
def test_a_live_lock_refuses_resume_and_abort(world, state):
    world.db.moves[EMAIL] = dict(source="ms1", target="ms2", state=state, owner="ms2:100",
                                 lock_until=world.clock() + 600, sync_state="", source_status=None)
    for extra in ({}, {"abort": True}):
        with pytest.raises(MoveError, match="lock is held by ms2:100"):
            world.run(owner="ms2:200", **extra)
    assert world.db.moves[EMAIL]["state"] == state and world.boxes[MS2] == []


def test_an_expired_or_dead_owners_lock_is_taken_over(world):
    world.db.moves[EMAIL] = dict(source="ms1", target="ms2", state="copying", owner="ms2:100",
                                 lock_until=world.clock() + 600, sync_state="", source_status=None)
    world.dead.add("ms2:100")
    assert world.run(owner="ms2:200")["outcome"] == "resumed"
    world2 = World(world.tmp_path)
    world2.db.moves[EMAIL] = dict(source="ms1", target="ms2", state="copying", owner="ms9:1",
                                  lock_until=world2.clock() - 1, sync_state="", source_status=None)
    assert world2.run(owner="ms2:200")["outcome"] == "resumed"


def test_the_final_step_waits_until_the_source_reports_no_session(world):
    mover = world.mover()
    world.dovecot.sessions[MS1] = 3  # ends at the third kick
    mover.run()
    kicks = [c for c in world.dovecot.calls if c == ("kick", MS1)]
    first_sync = world.dovecot.calls.index(next(c for c in world.dovecot.calls if c[0] == "sync"))
    assert len(kicks) >= 3 and world.dovecot.calls.index(kicks[2]) < first_sync


def test_sessions_that_do_not_end_fail_the_run_still_held(world):
    mover = world.mover()
    world.dovecot.sessions[MS1] = 10 ** 6
    with pytest.raises(MoveError, match="ms1 still reports sessions of the user"):
        mover.run()
    assert world.db.moves[EMAIL]["state"] == "held" and world.db.hold[EMAIL] is not None
    assert not [c for c in world.dovecot.calls if c[0] == "sync"]
    # Once they end, a rerun finishes the move.
    world.dovecot.sessions[MS1] = 0
    assert world.run()["outcome"] == "resumed" and world.db.moves[EMAIL]["state"] == "done"


def test_a_delivery_written_during_the_final_sync_is_taken_by_another_pass(world):
    mover = world.mover()
    world.dovecot.during_sync.append(lambda d: None)  # the copy passes
    world.dovecot.during_sync.append(lambda d: None)
    world.dovecot.during_sync.append(lambda d: d.boxes[MS1].append("<lmtp-late@x>"))
    mover.run()
    assert "<lmtp-late@x>" in world.boxes[MS2]
    assert [c[0] for c in world.dovecot.calls if c[0] in ("backup", "sync")] == ["backup", "backup", "sync", "sync"]


def late_on_source_missed_by_the_saved_state(world):
    """A message saved on the source during the last copy pass, which the
    final sync's saved state misses (the lab's race, 3 moves in 21)."""
    world.dovecot.during_sync.append(lambda d: None)
    world.dovecot.during_sync.append(lambda d: d.boxes[MS1].append("<late@x>"))
    world.dovecot.lose.add("<late@x>")


def test_a_message_the_final_sync_missed_is_found_by_guid_and_copied_by_a_full_pass(world):
    mover = world.mover()
    late_on_source_missed_by_the_saved_state(world)
    result = mover.run()
    assert result["outcome"] == "moved" and world.boxes[MS2].count("<late@x>") == 1
    assert any("1 message(s) of ms1 were not on ms2 (INBOX <late@x>); one full two-way pass" in w
               for w in result["warnings"])
    assert ("sync", MS1, "") in world.dovecot.calls  # the full pass: no state
    assert json.loads(world.db.moves[EMAIL]["source_status"]) == world.dovecot.status(MS1)


def test_a_message_still_missing_after_a_full_pass_keeps_the_move_held(world):
    mover = world.mover()
    late_on_source_missed_by_the_saved_state(world)
    world.dovecot.lose_always = True
    with pytest.raises(MoveError, match=r"1 message\(s\) of ms1 are not on ms2 even after a full two-way sync "
                                        r"\(INBOX <late@x>\); still held"):
        mover.run()
    assert world.db.moves[EMAIL]["state"] == "held" and world.db.hold[EMAIL] is not None
    assert "<late@x>" in world.boxes[MS1]


def test_a_source_that_keeps_changing_fails_the_run_still_held(world):
    mover = world.mover()

    def writer(d):
        d.boxes[MS1].append("<more-%d@x>" % len(d.calls))
        d.during_sync.append(writer)
    world.dovecot.during_sync.append(writer)
    with pytest.raises(MoveError, match="kept changing through 5 final syncs"):
        mover.run()
    assert world.db.moves[EMAIL]["state"] == "held"


def test_a_proxy_that_is_down_does_not_strand_the_move(world):
    mover = world.mover()
    world.dovecot.down.add(PROXIES[0])
    result = mover.run()
    assert result["outcome"] == "moved" and world.db.moves[EMAIL]["state"] == "done"
    assert any("proxy kick on 10.0.0.31 failed" in w for w in result["warnings"])
    assert ("proxy kick", PROXIES[1]) in world.dovecot.calls and ("kick", MS1) in world.dovecot.calls


def test_a_source_shard_whose_doveadm_goes_down_after_the_flip_keeps_the_move_held(world):
    mover = world.mover()
    real = world.db.set_state

    def flip_then_down(email, state, **kw):
        real(email, state, **kw)
        if state == "held":
            world.dovecot.down.add(MS1)
    world.db.set_state = flip_then_down
    with pytest.raises(Exception, match="Connection refused"):
        mover.run()
    assert world.db.moves[EMAIL]["state"] == "held"


@pytest.mark.parametrize("down", [MS1, MS2])
def test_a_doveadm_server_down_before_the_move_refuses_it_before_any_change(world, down):
    mover = world.mover()
    world.dovecot.down.add(down)
    name = "ms1" if down == MS1 else "ms2"
    with pytest.raises(MoveError, match="the doveadm server of %s \\(%s\\) does not answer.*nothing was changed"
                       % (name, down)):
        mover.run()
    assert world.db.writes == 0 and world.db.moves == {} and world.db.mailboxes[EMAIL][0] == "ms1"
    assert not [c for c in world.dovecot.calls if c[0] in ("backup", "sync")]


@pytest.mark.parametrize("down", [MS1, MS2])
def test_a_doveadm_server_down_after_the_copy_refuses_the_flip(world, down):
    mover = world.mover()
    world.dovecot.during_sync = [lambda d: None, lambda d: d.down.add(down)]
    with pytest.raises(MoveError, match="does not answer.*nothing was changed"):
        mover.run()
    assert world.db.moves[EMAIL]["state"] == "copying" and world.db.mailboxes[EMAIL][0] == "ms1"
    assert world.db.hold.get(EMAIL) is None
    world.dovecot.down.clear()
    world.db.moves[EMAIL]["owner"] = None
    assert world.run()["outcome"] == "resumed" and world.boxes[MS2] == world.boxes[MS1]


def test_a_copy_that_leaves_less_than_a_hold_of_run_seconds_does_not_hold(world):
    mover = world.mover(run_seconds=100)
    world.dovecot.during_sync = [lambda d: world.clock.sleep(40), lambda d: world.clock.sleep(40)]
    with pytest.raises(MoveError, match="less than a hold.*still copying; run again to resume"):
        mover.run()
    assert world.db.moves[EMAIL]["state"] == "copying" and world.db.mailboxes[EMAIL][0] == "ms1"
    assert world.db.hold.get(EMAIL) is None and world.db.moves[EMAIL]["owner"] is None
    # The rerun (a new budget) finishes it.
    assert world.run(run_seconds=100)["outcome"] == "resumed" and world.db.moves[EMAIL]["state"] == "done"


def test_no_final_sync_starts_once_run_seconds_is_spent(world):
    mover = world.mover(run_seconds=100)
    world.dovecot.during_sync = [lambda d: None, lambda d: None, lambda d: world.clock.sleep(120)]
    real = world.dovecot.status
    seen = []

    def changing(address):  # the source changes at every pass: another pass is due
        seen.append(address)
        return real(address) + [["n", str(len(seen))]]
    world.dovecot.status = changing
    with pytest.raises(MoveError, match="run_seconds \\(100\\) reached during the final syncs; still held"):
        mover.run()
    assert world.db.moves[EMAIL]["state"] == "held"
    assert len([c for c in world.dovecot.calls if c[0] == "sync"]) == 1


# -- cleanup, on the source ---------------------------------------------------

def finished(world):
    world.run()
    return world.copy_dir()


def test_cleanup_removes_the_old_copy_renamed_aside(world):
    copy = finished(world)
    renamed = []
    real = os.rename
    fs.os.rename = lambda a, b: (renamed.append((a, b)), real(a, b))
    try:
        result = world.run(local=MS1, cleanup=True)
    finally:
        fs.os.rename = real
    assert result["outcome"] == "cleaned" and not copy.exists() and EMAIL not in world.db.moves
    assert renamed == [(str(copy), str(copy) + fs.ASIDE)] and not os.path.exists(str(copy) + fs.ASIDE)
    assert world.boxes[MS2]  # the live copy untouched


def test_cleanup_on_another_shard_changes_nothing(world):
    copy = finished(world)
    assert not world.run(local=MS2, cleanup=True)["changed"] and copy.exists()


def test_cleanup_of_a_copy_written_since_the_final_sync_syncs_it_into_the_target_first(world):
    copy = finished(world)
    world.boxes[MS1].append("<written-after@x>")
    mover = world.mover(local=MS1, cleanup=True)
    world.dovecot.sessions[MS1] = 1
    result = mover.run()
    assert result["merged"] and any("changed since the final sync" in w for w in result["warnings"])
    assert world.boxes[MS2].count("<written-after@x>") == 1
    # The old copy's session ended (on the shard only: the user's live sessions through the proxies stay).
    assert ("kick", MS1) in world.dovecot.calls and not [c for c in world.dovecot.calls if c[0] == "proxy kick"]
    # Incremental from the final sync's state.
    syncs = [c for c in world.dovecot.calls if c[0] == "sync"]
    assert syncs and syncs[0][1] == MS2 and syncs[0][2]
    assert not copy.exists() and EMAIL not in world.db.moves


def test_cleanup_of_a_changed_copy_whose_sync_fails_removes_nothing(world):
    copy = finished(world)
    world.boxes[MS1].append("<written-after@x>")
    mover = world.mover(local=MS1, cleanup=True)

    def refused(mode, address, state):
        raise DsyncError("doveadm sync with %s failed (exit 75)" % address)
    world.dovecot.dsync = refused
    with pytest.raises(DsyncError):
        mover.run()
    assert copy.exists() and EMAIL in world.db.moves and "<written-after@x>" not in world.boxes[MS2]


def test_cleanup_refuses_without_a_saved_status(world):
    copy = finished(world)
    world.db.moves[EMAIL]["source_status"] = None
    with pytest.raises(MoveError, match="nothing proves the target holds all of it"):
        world.run(local=MS1, cleanup=True)
    assert copy.exists()


@pytest.mark.parametrize("maildir, why", [
    ("example.test/", "holds another mailbox"),
    ("example.test/dave/Maildir/", "holds another mailbox"),
    ("/", "is not a path under mail_root"),
    ("../etc/", "is not a path under mail_root"),
])
def test_cleanup_refuses_a_path_that_is_not_one_users_mailbox(world, maildir, why):
    finished(world)
    dave = world.copy_dir("dave")
    world.db.mailboxes[EMAIL][1] = maildir
    with pytest.raises(fs.CopyPathError, match=why):
        world.run(local=MS1, cleanup=True)
    assert dave.exists() and EMAIL in world.db.moves


def test_cleanup_finishes_a_removal_cut_short(world):
    copy = finished(world)
    os.rename(str(copy), str(copy) + fs.ASIDE)
    assert world.run(local=MS1, cleanup=True)["outcome"] == "cleaned"
    assert not os.path.exists(str(copy) + fs.ASIDE) and EMAIL not in world.db.moves


def test_cleanup_refuses_an_unfinished_move(world):
    world.db.moves[EMAIL] = dict(source="ms1", target="ms2", state="held", owner=None, lock_until=None,
                                 sync_state="", source_status=None)
    with pytest.raises(MoveError, match="unfinished"):
        world.run(local=MS1, cleanup=True)


# -- the run killed at each write, then run again ------------------------------

def writes_of_a_whole_move(tmp_path):
    w = World(tmp_path)
    w.run()
    return w.db.writes


@pytest.mark.parametrize("crash_after", range(0, 8))
def test_a_move_killed_at_any_write_resumes_with_every_message_once(tmp_path, crash_after):
    assert writes_of_a_whole_move(tmp_path / "probe") == 8
    world = World(tmp_path)
    world.db.crash_after = crash_after
    with pytest.raises(Crash):
        world.run(owner="ms2:100")
    world.db.crash_after = None
    world.dead.add("ms2:100")
    # Mail delivered meanwhile, where the database sends it.
    world.boxes[HOSTS[world.db.mailboxes[EMAIL][0]]].append("<after-the-crash@x>")
    world.run(owner="ms2:200")
    assert world.db.moves[EMAIL]["state"] == "done" and world.db.mailboxes[EMAIL][0] == "ms2"
    assert sorted(world.boxes[MS2]) == sorted(set(world.boxes[MS2]))
    assert set(world.boxes[MS2]) >= {"<m%d@x>" % i for i in range(5)} | {"<after-the-crash@x>"}
    assert world.db.hold[EMAIL] is None


@pytest.mark.parametrize("crash_after", range(0, 5))
def test_an_abort_killed_at_any_write_can_be_run_again(tmp_path, crash_after):
    world = World(tmp_path)
    world.boxes[MS2] = list(world.boxes[MS1]) + ["<saved-on-target@x>"]
    world.db.mailboxes[EMAIL][0] = "ms2"
    world.db.moves[EMAIL] = dict(source="ms1", target="ms2", state="held", owner=None, lock_until=None,
                                 sync_state="s2", source_status=None)
    copy = world.copy_dir()
    world.db.crash_after = crash_after
    with pytest.raises(Crash):
        world.run(owner="ms2:100", abort=True)
    world.db.crash_after = None
    world.dead.add("ms2:100")
    world.run(owner="ms2:200", abort=True)
    assert EMAIL not in world.db.moves and world.db.mailboxes[EMAIL][0] == "ms1" and not copy.exists()
    assert "<saved-on-target@x>" in world.boxes[MS1]


# -- the Dovecot side: what is asked of doveadm ---------------------------------

class Client(object):
    replies = {}
    asked = []

    def __init__(self, address, password, port, timeout=60):
        self.address, self.timeout = address, timeout

    def run(self, words, user=""):
        Client.asked.append((self.address, words, user, self.timeout))
        reply = Client.replies.get(words[0])
        if isinstance(reply, Exception):
            raise reply
        return reply or []

    def close(self):
        pass


def test_dsync_keeps_state_and_who_and_kick_read_doveadm():
    from ansible_collections.mailops.mailstack.plugins.module_utils.doveadm import DoveadmError
    from ansible_collections.mailops.mailstack.plugins.module_utils.mailbox_move_dovecot import Dovecot
    ran = []
    dovecot = Dovecot(lambda cmd: (ran.append(cmd), (0, "NEWSTATE\n", ""))[1], EMAIL, "pw", 24245, client=Client)
    assert dovecot.dsync("sync", "fd00::2", "OLD")[1] == "NEWSTATE"
    assert ran[-1] == ["doveadm", "sync", "-s", "OLD", "-u", EMAIL, "tcp:[fd00::2]:24245"]
    dovecot.dsync("backup", MS1, "")
    assert ran[-1] == ["doveadm", "backup", "-R", "-s", "", "-u", EMAIL, "tcp:10.0.0.1:24245"]
    Client.replies = {"who": DoveadmError("x", code="NOTFOUND"), "kick": DoveadmError("x", code="NOTFOUND"),
                      "mailbox": ["Sent", "0", "1", "7", "g2", "INBOX", "3", "4", "7", "g1"]}
    assert dovecot.who(MS1) == [] and dovecot.kick(MS1) is None
    assert dovecot.status(MS1) == [["INBOX", "3", "4", "7", "g1"], ["Sent", "0", "1", "7", "g2"]]
    Client.replies = {"who": [EMAIL, "1", "imap", "(12)", "(10.0.0.31)"], "proxy": DoveadmError("refused")}
    assert dovecot.who(MS1)[0] == EMAIL
    with pytest.raises(DoveadmError):
        dovecot.kick(MS1, proxy=True)
    # A hung proxy is given 5 seconds, not the 60 of the shard's doveadm.
    assert Client.asked[-1] == (MS1, ["proxy", "kick", EMAIL], "", 5)
    dovecot.kick(MS1)
    assert Client.asked[-1][3] == 60


def test_a_state_dsync_refuses_is_answered_by_a_full_pass(world):
    from ansible_collections.mailops.mailstack.plugins.module_utils.mailbox_move_dovecot import DsyncError
    mover = world.mover()
    real = world.dovecot.dsync

    def picky(mode, address, state):
        if mode == "sync" and state:
            world.dovecot.calls.append(("refused", state))
            raise DsyncError("carol@example.test: doveadm sync with 10.0.0.1 failed (exit 1): Invalid state")
        return real(mode, address, state)
    world.dovecot.dsync = picky
    result = mover.run()
    assert world.db.moves[EMAIL]["state"] == "done"
    assert [c for c in world.dovecot.calls if c[0] == "sync"][0][2] == ""
    assert any("a full pass instead" in w for w in result["warnings"])


def test_who_counts_only_the_users_sessions():
    from ansible_collections.mailops.mailstack.plugins.module_utils.mailbox_move_dovecot import Dovecot
    dovecot = Dovecot(None, EMAIL, "pw", 24245, client=Client)
    Client.replies = {"who": ["username", "#", "proto", "(pids)", "(ips)"]}
    assert dovecot.who(MS1) == []


def test_a_hold_that_expired_before_the_release_is_reported(world):
    mover = world.mover()
    world.dovecot.during_sync.extend([lambda d: None, lambda d: None, lambda d: world.clock.sleep(31)])
    result = mover.run()
    assert result["hold_seconds"] >= 30 and result["sync_seconds"] == 0.5
    assert any("the hold expired before the final sync ended" in w for w in result["warnings"])
