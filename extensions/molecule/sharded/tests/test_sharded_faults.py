"""Fault injection for mailbox_move, counted by Message-ID: the controller
and the module's process killed while a move copies, and while it holds
(the proxy paused, so the move waits on its kick: a hung proxy); the move
run again resumes it, and every message the user had, and every one
written while nothing ran, is on the target once, with the same
UIDVALIDITY. Each case ends with the cleanup of the source copy.

Then (issue 27, items 3 and 6): a proxy's Dovecot down during a move; the
source's Dovecot restarted during the copy; a second move of the user
started while the first holds its lock; a suspended user in a drain; the
cleanup after a write into the old copy; 50 messages delivered across the
flip. Each counts by Message-ID (0 lost, 0 duplicated), and checks that
UIDVALIDITY and the UIDs are kept.

Not part of the suite's run (it adds minutes): MAILSTACK_FAULTS=1 with
molecule verify -s sharded on a converged lab. Runs after test_sharded.py
(file order), with alice on ms1."""

import collections
import json
import os
import signal
import subprocess
import time

import pytest

import testlib
from mailstack_testlib import ansible_env, playbook

pytestmark = pytest.mark.skipif(not os.environ.get("MAILSTACK_FAULTS"),
                                reason="fault injection: MAILSTACK_FAULTS=1 molecule verify -s sharded")

USER, EMAIL = "alice", "alice@example.test"
MAILDIR = "/var/vmail/example.test/alice/Maildir"


shard = testlib.lab_host
sql = testlib.mail_sql


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


def fill(store, tag, n):
    store.check_output("python3 - %s %d %s <<'EOF'\n%s\nEOF" % (tag, n, MAILDIR, FILL))


def ids(store):
    return testlib.maildir_ids(store, MAILDIR)


def uidvalidity(store):
    return store.check_output("doveadm mailbox status -u %s uidvalidity INBOX" % EMAIL)


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


# -- issue 27, items 3 and 6 ---------------------------------------------------

def where(address=EMAIL):
    return sql("SELECT mailbox_host FROM mailbox WHERE email = '%s'" % address)


def ends(address=EMAIL):
    """(source, target) shard names: from where the user is to the other."""
    source = where(address)
    return source, "ms2" if source == "ms1" else "ms1"


def maildir(address):
    local, domain = address.split("@")
    return "/var/vmail/%s/%s/Maildir" % (domain, local)


def fill_user(store, address, tag, n):
    store.check_output("python3 - %s %d %s <<'EOF'\n%s\nEOF" % (tag, n, maildir(address), FILL))


def snapshot(store, address=EMAIL):
    """What an IMAP client sees of address's INBOX on store (doveadm fetch):
    {"uidvalidity": ..., "ids": Counter of Message-IDs, "uids": {Message-ID: UID}}."""
    rows = json.loads(store.check_output("doveadm -f json fetch -u %s 'uid hdr.message-id' mailbox INBOX" % address))
    ids = [r["hdr.message-id"].strip() for r in rows]
    return {"uidvalidity": store.check_output("doveadm mailbox status -u %s uidvalidity INBOX" % address),
            "ids": collections.Counter(ids),
            "uids": dict((r["hdr.message-id"].strip(), r["uid"]) for r in rows)}


def assert_kept(before, after, added=()):
    """Every message of before once in after (0 lost, 0 duplicated), added
    ones once too, nothing else; same UIDVALIDITY and UIDs."""
    want = before["ids"] + collections.Counter(added)
    lost = sorted(i for i in want if after["ids"][i] < want[i])
    duplicated = sorted(i for i in after["ids"] if after["ids"][i] > max(want[i], 1))
    assert (lost, duplicated) == ([], []), {"lost": lost[:10], "duplicated": duplicated[:10],
                                            "lost_n": len(lost), "duplicated_n": len(duplicated)}
    assert after["ids"] == want
    assert after["uidvalidity"] == before["uidvalidity"]
    changed = dict((i, (u, after["uids"][i])) for i, u in before["uids"].items() if after["uids"].get(i) != u)
    assert changed == {}, changed


def move_user(target, *extra, address=EMAIL):
    """move_user.yml for address onto target: (return code, its output and
    warnings as one line)."""
    result = playbook("-i", os.path.join(testlib.state_dir("sharded"), "inventory"),
                      os.path.join(testlib.PROJECT, "playbooks", "move_user.yml"),
                      "-e", "mailstack_move_email=%s" % address, "-e", "mailstack_move_target=%s" % target, *extra,
                      env=ansible_env(), cwd=testlib.PROJECT)
    return result.returncode, " ".join((result.stdout + result.stderr).split())


def move(target, *extra, address=EMAIL):
    rc, out = move_user(target, *extra, address=address)
    assert rc == 0, out[-3000:]
    return out


def test_a_proxy_down_during_a_move_does_not_strand_it():
    source, target = ends()
    fill_user(shard(source), EMAIL, "proxy-down", 200)
    before = snapshot(shard(source))
    proxy = shard("proxy1")
    proxy.check_output("systemctl stop dovecot")
    try:
        out = move(target, "-e", "mailstack_move_cleanup=true")
    finally:
        proxy.check_output("systemctl start dovecot")
    assert "%s: moved %s -> %s" % (EMAIL, source, target) in out, out[-3000:]
    # The proxy's kick failed, reported; the move did not wait on it.
    assert "proxy kick on" in out and "failed" in out, out[-3000:]
    assert_kept(before, snapshot(shard(target)))
    assert where() == target and not shard(source).file(maildir(EMAIL)).exists
    assert sql("SELECT COUNT(*) FROM mailbox_move WHERE email = '%s'" % EMAIL) == "0"
    assert proxy.service("dovecot").is_running


def test_the_sources_dovecot_restarted_during_the_copy(tmp_path):
    source, target = ends()
    src = shard(source)
    fill_user(src, EMAIL, "restart", 3000)
    before = snapshot(src)
    with open(str(tmp_path / "move.log"), "w") as log:
        proc = start_move(target, log)
        assert wait_state("copying") not in (None, "-")
        # (A restart can hang in these containers' systemd, docs/lab.md: then killed and started.)
        src.check_output("timeout 100 systemctl restart dovecot || { systemctl kill -s KILL dovecot; "
                         "systemctl reset-failed dovecot; systemctl start dovecot; }")
        assert src.service("dovecot").is_running
        proc.wait(timeout=900)
    first = " ".join(open(str(tmp_path / "move.log")).read().split())
    if proc.returncode != 0:
        # The copy broke off with the source's doveadm server: still copying, nothing held; a rerun resumes.
        assert sql("SELECT state FROM mailbox_move WHERE email = '%s'" % EMAIL) == "copying", first[-3000:]
        assert sql("SELECT IFNULL(hold_until, 'none') FROM mailbox WHERE email = '%s'" % EMAIL) == "none"
        out = move(target)
        assert "%s: resumed %s -> %s" % (EMAIL, source, target) in out, out[-3000:]
    print("first run rc %d" % proc.returncode)
    assert_kept(before, snapshot(shard(target)))
    assert sql("SELECT state FROM mailbox_move WHERE email = '%s'" % EMAIL) == "done"
    move(target, "-e", "mailstack_move_cleanup=true")
    assert not src.file(maildir(EMAIL)).exists


def test_a_second_move_of_the_user_is_refused_naming_the_owner(tmp_path):
    """Two runs for one user at once: the second starts while the first holds
    the lock (its module is stopped, SIGSTOP, while it copies, so the two
    overlap for certain); it is refused naming the owner, and the first
    finishes with every message once."""
    source, target = ends()
    fill_user(shard(source), EMAIL, "twice", 1000)
    before = snapshot(shard(source))
    with open(str(tmp_path / "first.log"), "w") as log:
        proc = start_move(target, log)
        owner = wait_state("copying")
        assert owner not in (None, "-")
        host, pid = owner.split(":")
        shard(host).check_output("kill -STOP %s" % pid)
        try:
            rc, refused = move_user(target)
        finally:
            shard(host).check_output("kill -CONT %s" % pid)
        proc.wait(timeout=900)
    assert rc != 0, refused[-3000:]
    assert "%s: another run is moving this mailbox: the lock is held by %s until" % (EMAIL, owner) in refused, \
        refused[-3000:]
    assert proc.returncode == 0, open(str(tmp_path / "first.log")).read()[-3000:]
    assert_kept(before, snapshot(shard(target)))
    move(target, "-e", "mailstack_move_cleanup=true")
    assert not shard(source).file(maildir(EMAIL)).exists


def test_cleanup_after_a_write_into_the_old_copy_keeps_the_write():
    source, target = ends()
    before = snapshot(shard(source))
    out = move(target)
    assert "%s: moved %s -> %s" % (EMAIL, source, target) in out, out[-3000:]
    # A late writer puts a message into the old copy after the final sync.
    fill_user(shard(source), EMAIL, "late", 1)
    out = move(target, "-e", "mailstack_move_cleanup=true")
    assert "changed since the final sync" in out and "synced into %s" % target in out, out[-3000:]
    after = snapshot(shard(target))
    assert_kept(before, after, added=["<late-0@faults>"])
    assert not shard(source).file(maildir(EMAIL)).exists
    assert sql("SELECT COUNT(*) FROM mailbox_move WHERE email = '%s'" % EMAIL) == "0"


SUSPENDED = "bob@example.test"


def clean_finished(users):
    """Remove the copies (and records) that finished moves of users left
    (test_sharded.py's drain leaves them, as drains do), so that moving them
    again is not refused; each user stays where it is."""
    by_shard = collections.defaultdict(list)
    for user in users:
        by_shard[where(user)].append(user)
    for current, them in by_shard.items():
        testlib.run_playbook("sharded", "move_user.yml", "-e", json.dumps({"mailstack_move_emails": them}),
                             "-e", "mailstack_move_target=%s" % current, "-e", "mailstack_move_cleanup=true")
    assert sql("SELECT COUNT(*) FROM mailbox_move WHERE email IN (%s)" % ", ".join("'%s'" % u for u in users)) == "0"


def test_a_suspended_user_moves_in_a_drain():
    drained, other = ends(SUSPENDED)
    users = sql("SELECT email FROM mailbox WHERE mailbox_host = '%s' ORDER BY email" % drained).split()
    clean_finished(users)
    before = dict((u, snapshot(shard(drained), u)) for u in users)
    sql("UPDATE mailbox SET active = 0 WHERE email = '%s'" % SUSPENDED)
    try:
        out = " ".join(testlib.run_playbook("sharded", "drain_shard.yml", "-e",
                                            "mailstack_drain_shard=%s" % drained).split())
        assert "%s: %d user(s) moved to %s" % (drained, len(users), other) in out, out[-3000:]
        assert "%s: moved %s -> %s" % (SUSPENDED, drained, other) in out, out[-3000:]
        for user in users:
            assert where(user) == other
            assert_kept(before[user], snapshot(shard(other), user))
        # Still suspended on its new shard: doveadm finds it, LMTP and a login do not.
        dst = shard(other)
        assert dst.run("doveadm user -x service=doveadm %s" % SUSPENDED).rc == 0
        for service in ("lmtp", "imap"):
            assert dst.run("doveadm user -x service=%s %s" % (service, SUSPENDED)).rc != 0, service
        refused = shard("outside1").run(
            "python3 -c \"import imaplib, ssl; m = imaplib.IMAP4_SSL('imap.example.test', 993, "
            "ssl_context=ssl._create_unverified_context()); m.login('%s', 'bob-lab-password')\"" % SUSPENDED)
        assert refused.rc != 0 and "AUTHENTICATIONFAILED" in refused.stderr + refused.stdout, refused.stderr
    finally:
        sql("UPDATE mailbox SET active = 1 WHERE email = '%s'" % SUSPENDED)
        sql("UPDATE mailbox_host SET state = 'active' WHERE name = '%s'" % drained)
    # The drain leaves the copies; removed here so that later moves back are not refused.
    testlib.run_playbook("sharded", "move_user.yml", "-e", json.dumps({"mailstack_move_emails": users}),
                         "-e", "mailstack_move_target=%s" % other, "-e", "mailstack_move_cleanup=true")
    assert all(not shard(drained).file(maildir(u)).exists for u in users)


# Sends N messages to alice, one every PACE seconds, through both SMTP
# hosts; the second half only once /tmp/span.go exists (the test makes it
# when it sees the flip), so that deliveries come before and after it.
SPAN_SENDER = """
import os, smtplib, sys, time
tag, n, pace, hosts = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
for i in range(n):
    while i >= n // 2 and not os.path.exists("/tmp/span.go"):
        time.sleep(0.05)
    s = smtplib.SMTP(hosts[i % len(hosts)], 25, timeout=30)
    s.sendmail("someone@outside.test", ["alice@example.test"],
               "From: someone@outside.test\\r\\nMessage-ID: <span-%s-%02d@outside.test>\\r\\nSubject: span %d\\r\\n\\r\\nhi\\r\\n"
               % (tag, i, i))
    s.quit()
    time.sleep(pace)
print(n)
"""

# The LMTP delivery time of each span message on a shard: its topmost
# Received header's date (Dovecot's LMTP writes it), as a Unix time.
RECEIVED = """
import email, email.utils, glob, json, sys
times = {}
for path in glob.glob(sys.argv[1] + "/new/*") + glob.glob(sys.argv[1] + "/cur/*"):
    with open(path, "rb") as f:
        m = email.message_from_binary_file(f)
    mid = m.get("Message-ID", "")
    if mid.startswith("<span-%s-" % sys.argv[2]):
        received = m.get_all("Received")[0]
        times[mid] = [email.utils.parsedate_to_datetime(received.rsplit(";", 1)[1].strip()).timestamp(),
                      " ".join(received.split())[:200]]
print(json.dumps(times))
"""

# On ns1: the time the move's record turned held (the flip), to /tmp/flip.
FLIP_WATCH = """
rm -f /tmp/flip
for i in $(seq 1 30000); do
  s=$(mysql -N mail -e "SELECT state FROM mailbox_move WHERE email = '$1'")
  if [ "$s" = held ]; then date +%s.%N > /tmp/flip; exit 0; fi
  sleep 0.01
done
"""


def test_fifty_messages_delivered_across_the_flip(tmp_path):
    clean_finished([EMAIL])
    tag = "%d" % time.time()  # the Message-IDs of this run's 50
    source, target = ends()
    src, dst, outside, ns1 = shard(source), shard(target), shard("outside1"), shard("ns1")
    # A copy long enough that the first messages are delivered on the source before the flip.
    fill_user(src, EMAIL, "span-bulk", 3000)
    before = snapshot(src)
    ns1.check_output("cat > /tmp/flipwatch.sh <<'EOF'\n%s\nEOF" % FLIP_WATCH)
    ns1.check_output("rm -f /tmp/flip; nohup sh /tmp/flipwatch.sh %s > /dev/null 2>&1 &" % EMAIL)
    # Both SMTP hosts (the tier's name, round robin).
    smtp = sorted(outside.check_output("dig +short A smtp.example.test").split())
    outside.check_output("cat > /tmp/span.py <<'EOF'\n%s\nEOF" % SPAN_SENDER)
    outside.check_output("rm -f /tmp/span.out /tmp/span.go")
    with open(str(tmp_path / "move.log"), "w") as log:
        proc = start_move(target, log)
        assert wait_state("copying") not in (None, "-")
        outside.check_output("nohup python3 /tmp/span.py %s 50 0.2 %s > /tmp/span.out 2>&1 &" % (tag, " ".join(smtp)))
        deadline = time.time() + 600
        while time.time() < deadline and not ns1.file("/tmp/flip").exists and proc.poll() is None:
            time.sleep(0.2)
        outside.check_output("touch /tmp/span.go")
        proc.wait(timeout=900)
    assert proc.returncode == 0, open(str(tmp_path / "move.log")).read()[-3000:]
    deadline = time.time() + 120
    while time.time() < deadline and outside.run("cat /tmp/span.out").stdout.strip() != "50":
        time.sleep(1)
    assert outside.check_output("cat /tmp/span.out") == "50"
    span = ["<span-%s-%02d@outside.test>" % (tag, i) for i in range(50)]
    deadline = time.time() + 180
    while time.time() < deadline and any(snapshot(dst)["ids"][i] < 1 for i in span):
        for name in ("smtp1", "smtp2"):
            shard(name).run("postqueue -f")
        time.sleep(2)
    assert_kept(before, snapshot(dst), added=span)
    flip = float(ns1.check_output("cat /tmp/flip"))
    times = json.loads(dst.check_output("python3 - %s %s <<'EOF'\n%s\nEOF" % (maildir(EMAIL), tag, RECEIVED)))
    assert sorted(times) == span
    first, last = min(times.values()), max(times.values())
    print("flip %.3f; first delivered %.0f (%s); last %.0f (%s)" % (flip, first[0], first[1], last[0], last[1]))
    # Received dates are whole seconds: the first was delivered in a second
    # before the flip's, the last in a second after it.
    assert first[0] < int(flip) and last[0] > flip, (flip, first, last)
    # Delivered on both sides of the flip: by the source's LMTP, then the target's.
    assert any("by %s" % source in t[1] for t in times.values()), times
    assert any("by %s" % target in t[1] for t in times.values()), times
    move(target, "-e", "mailstack_move_cleanup=true")
    assert not src.file(maildir(EMAIL)).exists
