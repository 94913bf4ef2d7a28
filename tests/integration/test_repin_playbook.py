"""playbooks/repin_server.yml end to end against a real MariaDB (the session's
throw-away server), with every host of the inventory on localhost and fake
doveadm, postqueue and exportfs first on the PATH: the plan, the flip and
the hold, the kick and the proof that no session is left, the release, and
what stops it. What the fakes stand for (Dovecot, Postfix, the NFS server's
kernel) is exercised in the nfs_shared scenario (make test-nfs).

The fake doveadm keeps its sessions in a file (one "user<TAB>service" a
line, the same for every host: they all run here); kick removes the user's
lines, unless the file "kick-fails" exists."""

import json
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from mailstack_testlib import CONFIG, ansible_env, playbook as ansible_playbook

REPO = Path(__file__).resolve().parents[2]
USERS = ["u%d@example.test" % n for n in range(1, 7)]

DOVEADM = r"""#!/bin/sh
# fake doveadm: who -1, proxy list, kick USER, proxy kick USER
state=%(state)s
args="$*"
case "$args" in
  "-f tab who -1"|"who -1") printf 'username\tservice\n'; cat "$state/sessions" 2>/dev/null || true ;;
  "-f tab proxy list") printf 'username\tservice\n' ;;
  "kick "*|"proxy kick "*)
    echo "$args" >> "$state/kicks"
    [ -e "$state/kick-fails" ] && { echo "Error: kick failed" >&2; exit 75; }
    user=${args##* }
    ( flock 9; grep -v "^$user	" "$state/sessions" > "$state/sessions.$$"; mv "$state/sessions.$$" "$state/sessions" ) \
      9>"$state/lock"
    ;;
  *) echo "fake doveadm: $args" >&2; exit 64 ;;
esac
"""


def fill(db):
    """The site's rows: ms1 with u1, u3, u5; ms2 with the others."""
    db.execute("INSERT INTO domain (name) VALUES ('example.test')")
    for name, address in (("ms1", "10.9.0.2"), ("ms2", "10.9.0.3")):
        db.execute("INSERT INTO mailbox_host (name, address) VALUES (%s, %s)", (name, address))
    for n, email in enumerate(USERS, 1):
        db.execute("INSERT INTO mailbox (email, local_part, domain, password, maildir, mailbox_host) "
                   "VALUES (%s, %s, 'example.test', 'x', %s, %s)",
                   (email, email.split("@")[0], "example.test/u%d/" % n, "ms1" if n % 2 else "ms2"))


def fakes(tmp_path, db, socket, groups=""):
    """The fake doveadm, postqueue and exportfs, and an inventory of local
    hosts (db1, nfs1, ms1, ms2, and the hosts of groups, given as YAML lines
    like those below); the site's dict."""
    state, bin_dir, records = tmp_path / "state", tmp_path / "bin", tmp_path / "records"
    for path in (state, bin_dir):
        path.mkdir()
    for name, text in (("doveadm", DOVEADM % {"state": state}), ("postqueue", "#!/bin/sh\nexit 0\n"),
                       ("exportfs", "#!/bin/sh\necho \"$*\" >> %s/exportfs\n" % state)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    local = "{ansible_connection: local, ansible_python_interpreter: %s}" % sys.executable
    (tmp_path / "hosts.yml").write_text(
        ("all:\n  children:\n    mail_db: {hosts: {db1: LOCAL}}\n" + groups
         + "    mail_nfs: {hosts: {nfs1: LOCAL}}\n    mail_mx: {hosts: {ms1: LOCAL, ms2: LOCAL}}\n"
         "    mail_store: {hosts: {ms1: {}, ms2: {}}}\n").replace("LOCAL", local))
    return {"db": db, "socket": socket, "state": state, "bin": bin_dir, "records": records,
            "inventory": tmp_path / "hosts.yml"}


@pytest.fixture
def site(db, mariadb, tmp_path):
    """The mail database of an nfs_shared site (fill), the fakes and an
    inventory."""
    fill(db)
    yield fakes(tmp_path, db, mariadb.socket)
    db.execute("DELETE FROM mailbox")
    db.execute("DELETE FROM mailbox_host")
    db.execute("DELETE FROM domain")


def repin(site, *extra, state="out"):
    env = ansible_env(config=CONFIG, PATH="%s:%s" % (site["bin"], os.environ["PATH"]))
    result = ansible_playbook(
        "-i", site["inventory"], REPO / "playbooks" / "repin_server.yml", "-e", "mailstack_repin_server=ms1",
        "-e", "mailstack_repin_state=%s" % state, "-e", "mailstack__socket=%s" % site["socket"],
        "-e", "mailstack__dir=%s" % site["records"], "-e", "mailstack_repin_session_wait=3",
        "-e", "mailstack_repin_attr_cache=2", "-e", "mailstack_repin_hold_timeout=30", *extra,
        cwd=REPO, env=env, timeout=600)
    return result.returncode, " ".join((result.stdout + result.stderr).split())


def pins(site):
    rows = site["db"].query("SELECT email, mailbox_host, hold_until > NOW() FROM mailbox ORDER BY email")
    return {r[0]: (r[1], bool(r[2])) for r in rows}


def record(site, name="current.json"):
    path = site["records"] / name
    return json.loads(path.read_text()) if path.exists() else None


def test_out_ends_the_sessions_waits_for_the_cache_and_releases(site):
    (site["state"] / "sessions").write_text("u1@example.test\timap\nu2@example.test\timap\n")
    start = time.time()
    rc, out = repin(site)
    assert rc == 0, out[-3000:]
    assert "ms1 out: 3 user(s) re-pinned in" in out and "fenced: none" in out
    assert pins(site) == {u: ("ms2", False) for u in USERS}
    # u1 (re-pinned) was kicked (by one server or both: they share the
    # fake's sessions and run at once); u2 (not re-pinned) kept its session.
    assert set((site["state"] / "kicks").read_text().splitlines()) == {"kick u1@example.test"}
    assert (site["state"] / "sessions").read_text() == "u2@example.test\timap\n"
    assert time.time() - start >= 2
    assert record(site) is None
    assert record(site, "ms1.json")["users"] == ["u1@example.test", "u3@example.test", "u5@example.test"]
    assert site["db"].query("SELECT state FROM mailbox_host WHERE name = 'ms1'")[0][0] == "draining"

    rc, out = repin(site, state="in")
    assert rc == 0, out[-3000:]
    assert "ms1 in: 3 user(s) re-pinned in" in out
    assert pins(site) == {u: ("ms1" if n % 2 else "ms2", False) for n, u in enumerate(USERS, 1)}
    assert record(site, "ms1.json") is None and record(site) is None

    # The same request again: nothing to do, nothing changed (the scenario's
    # second run failed on the empty plan and record once).
    rc, out = repin(site, state="in")
    assert rc == 0, out[-3000:]
    assert "ms1 in: 0 user(s) to re-pin" in out
    assert pins(site) == {u: ("ms1" if n % 2 else "ms2", False) for n, u in enumerate(USERS, 1)}


def test_a_failed_kick_stops_the_release_and_a_rerun_finishes_the_recorded_plan(site):
    (site["state"] / "sessions").write_text("u3@example.test\tpop3\n")
    (site["state"] / "kick-fails").write_text("")
    rc, out = repin(site)
    assert rc != 0 and "did not report the users free of sessions and deliveries" in out, out[-3000:]
    assert "exit 75: Error: kick failed" in out and "The hold stays (renewed for 30 s)" in out
    # Flipped and still held; the plan is recorded.
    assert pins(site) == {u: ("ms2", n % 2 == 1) for n, u in enumerate(USERS, 1)}
    saved = record(site)
    assert saved["phase"] == "flipped" and [m["email"] for m in saved["plan"]] == USERS[0::2]
    # Another request waits for this one.
    rc, out = repin(site, state="in")
    assert rc != 0 and "an unfinished re-pin of ms1 (out, phase flipped, 3 user(s)) must be finished first" in out
    # The same request finishes it with its plan (the pins, flipped already,
    # would give an empty one).
    os.unlink(site["state"] / "kick-fails")
    rc, out = repin(site)
    assert rc == 0, out[-3000:]
    assert "finishing the unfinished run, phase flipped" in out and "ms1 out: 3 user(s) re-pinned in" in out
    assert pins(site) == {u: ("ms2", False) for u in USERS}
    assert record(site) is None and (site["state"] / "sessions").read_text() == ""


def test_a_source_that_does_not_answer_is_fenced_before_the_flip(site):
    # ms1 unreachable (SSH to a loopback port nothing listens on: refused);
    # the fence of this machine cannot withdraw an export or expire NFSv4
    # state (none here), so the run stops there, before any pin changes.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    inventory = site["inventory"].read_text().replace(
        "ms1: {ansible_connection: local", "ms1: {ansible_host: 127.0.0.1, ansible_port: %d, ansible_connection: ssh, "
        "ansible_ssh_common_args: '-o ConnectTimeout=3', x: local" % closed_port)
    site["inventory"].write_text(inventory)
    rc, out = repin(site)
    assert rc != 0, out[-3000:]
    assert "answering: ms2" in out
    # (This machine exports nothing to it and runs no nfsd: the fence fails.)
    assert "10.9.0.2" in out and "so this server cannot fence it" in out, out[-3000:]
    assert pins(site) == {u: ("ms1" if n % 2 else "ms2", False) for n, u in enumerate(USERS, 1)}
    assert record(site)["phase"] == "planned"
    # The fence is recorded before it is made: a rerun makes it again.
    assert record(site, "fenced.json")["ms1"]["address"] == "10.9.0.2"


def test_a_fenced_server_that_has_not_restarted_does_not_come_back(site):
    rc, out = repin(site)
    assert rc == 0, out[-3000:]
    # As if ms1 had been fenced after its boot (this machine's boot).
    (site["records"] / "fenced.json").write_text(json.dumps({"ms1": {"address": "10.9.0.2", "at": time.time()}}))
    rc, out = repin(site, state="in")
    assert rc != 0 and "ms1 was fenced at" in out and "has not restarted since" in out, out[-3000:]
    assert pins(site) == {u: ("ms2", False) for u in USERS}
    assert site["db"].query("SELECT state FROM mailbox_host WHERE name = 'ms1'")[0][0] == "draining"
    assert record(site) is None and record(site, "fenced.json")["ms1"]["address"] == "10.9.0.2"


def test_check_mode_shows_the_plan_and_changes_nothing(site):
    (site["state"] / "sessions").write_text("u1@example.test\timap\n")
    rc, out = repin(site, "--check")
    assert rc == 0, out[-3000:]
    assert "ms1 out: 3 user(s) to re-pin, 3 to ms2" in out
    assert pins(site) == {u: ("ms1" if n % 2 else "ms2", False) for n, u in enumerate(USERS, 1)}
    assert site["db"].query("SELECT state FROM mailbox_host WHERE name = 'ms1'")[0][0] == "active"
    assert record(site) is None and record(site, "ms1.json") is None
    assert not (site["state"] / "kicks").exists()
