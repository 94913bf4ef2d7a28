"""What the scenarios' checks share: a Python client on a lab host, running
the collection's playbooks against the scenario's hosts, reading their
recap, and the health report.

Ansible runs through mailstack_testlib (tests/lib), as in every other test.
The verifier's PYTHONPATH (extensions/molecule/config.yml) has this
directory and tests/lib: a scenario's tests `import testlib`.
"""

import collections
import json
import os
import tempfile
import textwrap
import time

import testinfra

from mailstack_testlib import ansible_env, playbook, recap

__all__ = ["PROJECT", "client", "lab_host", "mail_sql", "maildir_ids", "recap", "report", "run_playbook", "state_dir"]

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())


def client(host, code):
    """Run a Python snippet on a lab host (testinfra), with json, smtplib,
    imaplib, poplib, ssl and time imported and ctx a TLS context that does
    not verify the lab's certificates; the snippet prints one JSON value
    last, which is returned."""
    script = textwrap.dedent(code)
    result = host.run("python3 - <<'PYEOF'\nimport json, smtplib, imaplib, poplib, ssl, time\n"
                      "ctx = ssl.create_default_context()\nctx.check_hostname = False\n"
                      "ctx.verify_mode = ssl.CERT_NONE\n" + script + "\nPYEOF")
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def state_dir(scenario):
    return os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", os.path.join(PROJECT, ".cache/molecule", scenario))


def run_playbook(scenario, name, *extra):
    """ansible-playbook playbooks/NAME (or the playbook at the absolute path
    NAME) on the scenario's inventory; its output. Molecule's ANSIBLE_CONFIG
    stays as the environment has it."""
    result = playbook("-i", os.path.join(state_dir(scenario), "inventory"), os.path.join(PROJECT, "playbooks", name),
                      *extra, env=ansible_env(), cwd=PROJECT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return result.stdout


def report(scenario, *extra):
    """playbooks/report.yml on the scenario's hosts: (the report as the
    playbook writes it, the playbook's output)."""
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        out = run_playbook(scenario, "report.yml", "-e", "mailstack_report_file=%s" % path, *extra)
        with open(path) as f:
            return json.load(f), out
    finally:
        os.unlink(path)


# A script left running on a host while a test acts (the ACME renewal tests'
# handshake loops). By its name N: it writes /tmp/N-rounds after each round,
# stops once /tmp/N-stop exists, and prints one JSON line at the end.
def start_loop(host, name, script):
    """Starts the script on the host and waits until its first round ended."""
    host.run("rm -f /tmp/%s-stop /tmp/%s-rounds /tmp/%s-loop.json" % (name, name, name))
    host.run("cat > /tmp/%s-loop.py <<'PYEOF'\n%s\nPYEOF" % (name, script))
    host.run("nohup python3 /tmp/%s-loop.py >/tmp/%s-loop.json 2>/tmp/%s-loop.err </dev/null &" % (name, name, name))
    deadline = time.time() + 60
    while time.time() < deadline and not host.file("/tmp/%s-rounds" % name).exists:
        time.sleep(0.5)
    assert host.file("/tmp/%s-rounds" % name).exists, host.run("cat /tmp/%s-loop.err" % name).stdout


def stop_loop(host, name, stop, timeout):
    """Writes the stop file (its text: stop) and returns the script's JSON
    line, waiting for it at most timeout seconds."""
    host.run("echo %s > /tmp/%s-stop" % (stop, name))
    deadline = time.time() + timeout
    while time.time() < deadline and not host.file("/tmp/%s-loop.json" % name).content_string.strip():
        time.sleep(1)
    out = host.file("/tmp/%s-loop.json" % name).content_string
    assert out.strip(), host.file("/tmp/%s-loop.err" % name).content_string
    return json.loads(out.strip().splitlines()[-1])


def lab_host(name):
    """A lab host (its container), for testinfra."""
    return testinfra.get_host("podman://%s" % name)


# Before a test's query: read what the database committed before it. A
# Galera node applies another node's commit a moment after that commit
# returned (a move's flip written through ms2's node, read on ns1). The
# sharded scenario's tests use it, whose database is such a cluster.
SYNC_WAIT = "SET SESSION wsrep_sync_wait = 1; "


def mail_sql(query, db_host="ns1"):
    """A query in the mail database, as root on its host (with Galera, any
    node: what was committed through another node before it included); the
    output."""
    return lab_host(db_host).check_output("mysql -N mail -e %s" % json.dumps(SYNC_WAIT + query))


# The Message-IDs of a Maildir's INBOX, one per message file (None for a
# message without one), read from the files themselves.
_MAILDIR_IDS = """
import email, glob, json, sys
ids = []
for path in glob.glob(sys.argv[1] + "/new/*") + glob.glob(sys.argv[1] + "/cur/*"):
    with open(path, "rb") as f:
        ids.append(email.message_from_binary_file(f).get("Message-ID"))
print(json.dumps(ids))
"""


def maildir_ids(host, maildir):
    """A Counter of the Message-IDs in maildir's new/ and cur/ on host."""
    return collections.Counter(json.loads(host.check_output(
        "python3 - %s <<'EOF'\n%s\nEOF" % (maildir, _MAILDIR_IDS))))
