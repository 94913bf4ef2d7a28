"""What the scenarios' checks share: a Python client on a lab host, running
the collection's playbooks against the scenario's hosts, reading their
recap, and the health report.

Import from a scenario's tests with
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
"""

import json
import os
import subprocess
import tempfile
import textwrap

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
    NAME) on the scenario's inventory; its output."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(PROJECT, ".cache/collections"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    cmd = ["ansible-playbook", "-i", os.path.join(state_dir(scenario), "inventory"),
           os.path.join(PROJECT, "playbooks", name)] + list(extra)
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=PROJECT, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return result.stdout


def recap(output, host):
    """The PLAY RECAP counters of host, as strings."""
    line = [entry for entry in output.splitlines() if entry.startswith(host + " ")][-1]
    return dict(part.split("=") for part in line.split(":", 1)[1].split())


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
