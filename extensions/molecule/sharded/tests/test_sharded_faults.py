"""Fault injection for mailbox_move, counted by Message-ID: the controller
and the module's process killed while a move copies, and while it holds
(the proxy paused, so the move waits on its kick: a hung proxy); the move
run again resumes it, and every message the user had, and every one
written while nothing ran, is on the target once, with the same
UIDVALIDITY. Each case ends with the cleanup of the source copy.

Not part of the suite's run (it adds minutes): MAILSTACK_FAULTS=1 with
molecule verify -s sharded on a converged lab. Runs after test_sharded.py
(file order), with alice on ms1."""

import collections
import json
import os
import signal
import subprocess

import pytest
import testinfra

import testlib
from mailstack_testlib import ansible_env

pytestmark = pytest.mark.skipif(not os.environ.get("MAILSTACK_FAULTS"),
                                reason="fault injection: MAILSTACK_FAULTS=1 molecule verify -s sharded")

USER, EMAIL = "alice", "alice@example.test"
MAILDIR = "/var/vmail/example.test/alice/Maildir"


def shard(name):
    return testinfra.get_host("podman://%s" % name)


# Messages written straight into the Maildir (enough that the copy lasts a
# few seconds), each with its own Message-ID, owned like the Maildir.
FILL = """
import os, sys, time
tag, n, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
st = os.stat(d)
for i in range(n):
    p = os.path.join(d, "new", "%d.%s%d.faults" % (time.time(), tag, i))
    with open(p, "w") as f:
        f.write("From: someone@outside.test\\nMessage-ID: <%s-%d@faults>\\nSubject: %s %d\\n\\nhi\\n" % (tag, i, tag, i))
    os.chown(p, st.st_uid, st.st_gid)
"""

IDS = """
import email, glob, json, sys
ids = []
for path in glob.glob(sys.argv[1] + "/new/*") + glob.glob(sys.argv[1] + "/cur/*"):
    with open(path, "rb") as f:
        ids.append(email.message_from_binary_file(f).get("Message-ID"))
print(json.dumps(ids))
"""


def fill(store, tag, n):
    store.check_output("python3 - %s %d %s <<'EOF'\n%s\nEOF" % (tag, n, MAILDIR, FILL))


def ids(store):
    return collections.Counter(json.loads(store.check_output("python3 - %s <<'EOF'\n%s\nEOF" % (MAILDIR, IDS))))


def uidvalidity(store):
    return store.check_output("doveadm mailbox status -u %s uidvalidity INBOX" % EMAIL)


def sql(query):
    return shard("ns1").check_output("mysql -N mail -e %s" % json.dumps(query))


def start_move(target, log):
    inventory = os.path.join(testlib.state_dir("sharded"), "inventory")
    return subprocess.Popen(["ansible-playbook", "-i", inventory, os.path.join(testlib.PROJECT, "playbooks", "move_user.yml"),
                             "-e", "mailstack_move_email=%s" % EMAIL, "-e", "mailstack_move_target=%s" % target],
                            env=ansible_env(), cwd=testlib.PROJECT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_state(state, timeout=120):
    """Wait on ns1 itself (a tight loop there) until the move's record is in
    state; the record's owner (host:pid of the module), or None."""
    out = shard("ns1").run(
        "for i in $(seq 1 %d); do s=$(mysql -N mail -e \"SELECT CONCAT(state, ' ', IFNULL(owner, '-')) FROM mailbox_move "
        "WHERE email = '%s'\"); case \"$s\" in %s\\ *) echo \"$s\"; exit 0;; esac; sleep 0.02; done; exit 1"
        % (timeout * 20, EMAIL, state))
    return out.stdout.split()[1] if out.rc == 0 else None


def kill(proc, owner):
    """The controller, then the module's process on its host and its
    children (doveadm), each by its id."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    host, pid = owner.split(":")
    shard(host).run("pkill -9 -P %s; kill -9 %s" % (pid, pid))


@pytest.mark.parametrize("state", ["copying", "held"])
def test_a_move_killed_then_run_again_keeps_every_message_once(tmp_path, state):
    ms1, ms2 = shard("ms1"), shard("ms2")
    source, target = ("ms1", "ms2") if sql("SELECT mailbox_host FROM mailbox WHERE email = '%s'" % EMAIL) == "ms1" \
        else ("ms2", "ms1")
    src, dst = (ms1, ms2) if source == "ms1" else (ms2, ms1)
    fill(src, "before-" + state, 3000)
    before, validity = ids(src), uidvalidity(src)
    paused = False
    try:
        with open(str(tmp_path / "move.log"), "w") as log:
            proc = start_move(target, log)
            if state == "held":
                # Once the move copies (the wiring, which needs every host, is over).
                assert wait_state("copying") not in (None, "-")
                subprocess.run(["podman", "pause", "proxy1"], check=True)
                paused = True
            owner = wait_state(state)
            if owner is None or owner == "-":
                proc.wait()
                pytest.fail("the move passed %s before it could be killed (%s)" % (state, sql(
                    "SELECT state FROM mailbox_move WHERE email = '%s'" % EMAIL)))
            kill(proc, owner)
    finally:
        if paused:
            subprocess.run(["podman", "unpause", "proxy1"], check=True)
    killed_in = sql("SELECT state FROM mailbox_move WHERE email = '%s'" % EMAIL)
    assert killed_in == state
    # Mail sent while nothing runs, to where the database sends it.
    host_now = sql("SELECT mailbox_host FROM mailbox WHERE email = '%s'" % EMAIL)
    fill(ms1 if host_now == "ms1" else ms2, "during-" + state, 5)
    out = testlib.run_playbook("sharded", "move_user.yml", "-e", "mailstack_move_email=%s" % EMAIL,
                               "-e", "mailstack_move_target=%s" % target)
    assert "%s: resumed %s -> %s" % (EMAIL, source, target) in " ".join(out.split()), (killed_in, out[-3000:])
    after = ids(dst)
    want = before + collections.Counter("<during-%s-%d@faults>" % (state, i) for i in range(5))
    assert after == want, (killed_in, {k: (want[k], after[k]) for k in set(want) | set(after) if want[k] != after[k]})
    assert uidvalidity(dst) == validity
    assert sql("SELECT state FROM mailbox_move WHERE email = '%s'" % EMAIL) == "done"
    # The copy left on the source removed (the cleanup proves it unchanged since the final sync).
    testlib.run_playbook("sharded", "move_user.yml", "-e", "mailstack_move_email=%s" % EMAIL,
                         "-e", "mailstack_move_target=%s" % target, "-e", "mailstack_move_cleanup=true")
    assert not src.file(MAILDIR).exists
