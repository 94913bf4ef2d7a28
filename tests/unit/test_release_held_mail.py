"""playbooks/files/release_held_mail.py against a stand-in postqueue on the
PATH: the deferred mail of the named recipients is released once, a message
still in the active queue is waited for and released once it is deferred,
a message that left the queue meanwhile is no error, other mail is left."""

import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "playbooks", "files", "release_held_mail.py")

# postqueue -j prints the entries of the state file's reading (the n-th
# call reads queues[n], the last one from then on); postqueue -i ID logs ID
# and fails for an ID in gone.
FAKE = textwrap.dedent("""\
    #!%s
    import json, os, sys
    d = os.path.dirname(os.path.abspath(__file__))
    state = json.load(open(os.path.join(d, "state.json")))
    if sys.argv[1] == "-j":
        n = int(open(os.path.join(d, "calls")).read()) if os.path.exists(os.path.join(d, "calls")) else 0
        open(os.path.join(d, "calls"), "w").write(str(n + 1))
        for entry in state["queues"][min(n, len(state["queues"]) - 1)]:
            print(json.dumps(entry))
    elif sys.argv[1] == "-i":
        open(os.path.join(d, "released"), "a").write(sys.argv[2] + "\\n")
        sys.exit(1 if sys.argv[2] in state.get("gone", []) else 0)
    """) % sys.executable


def entry(queue, queue_id, *addresses):
    return {"queue_name": queue, "queue_id": queue_id, "recipients": [{"address": a} for a in addresses]}


def run(tmp_path, queues, gone=(), *recipients):
    fake = tmp_path / "postqueue"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    (tmp_path / "state.json").write_text(json.dumps({"queues": queues, "gone": list(gone)}))
    env = dict(os.environ, PATH="%s:%s" % (tmp_path, os.environ["PATH"]))
    out = subprocess.run([sys.executable, SCRIPT] + list(recipients), env=env, capture_output=True, text=True,
                         check=True, timeout=30).stdout
    released = tmp_path / "released"
    return json.loads(out), released.read_text().split() if released.exists() else []


def test_the_deferred_mail_of_the_named_recipients_only(tmp_path):
    queues = [[entry("deferred", "A1", "alice@example.test"), entry("deferred", "B1", "bob@example.test"),
               entry("deferred", "C1", "carol@example.test", "Alice@Example.test")]]
    out, asked = run(tmp_path, queues, (), "ALICE@example.test")
    assert out["released"] == ["A1", "C1"] and asked == ["A1", "C1"]


def test_a_message_in_the_active_queue_is_released_once_it_is_deferred(tmp_path):
    # Resolved just before the release: active, then deferred, then delivered.
    queues = [[entry("active", "A1", "alice@example.test")], [entry("active", "A1", "alice@example.test")],
              [entry("deferred", "A1", "alice@example.test")], []]
    out, asked = run(tmp_path, queues, (), "alice@example.test")
    assert out == {"released": ["A1"], "waiting": []} and asked == ["A1"]


def test_a_message_gone_meanwhile_is_no_error_and_later_mail_is_not_waited_for(tmp_path):
    # B2 arrives after the release (resolved to the shard): not waited for.
    queues = [[entry("deferred", "A1", "alice@example.test")],
              [entry("deferred", "A1", "alice@example.test"), entry("active", "B2", "alice@example.test")]]
    out, asked = run(tmp_path, queues, ("A1",), "alice@example.test")
    assert out["released"] == [] and asked == ["A1"]
    assert int((tmp_path / "calls").read_text()) <= 4
