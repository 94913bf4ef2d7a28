"""playbooks/provision_users.yml against the real throw-away MariaDB: users
from a CSV file (or its text), idempotent, check mode, bad input refused
naming the variable, no password in the output."""

import json
import sys
from pathlib import Path

import pytest

from mailstack_testlib import CONFIG, REPO, ansible_env, playbook
from mailstack_testlib.mariadb import ADMIN_PASSWORD

CSV = ("email,password,quota,aliases\n"
       "csv1@example.org,Csv1-secret-pw,1024,sales@example.org\n"
       "csv2@example.org,Csv2-secret-pw,,\n")


@pytest.fixture
def run(mariadb, db, tmp_path):
    db.execute("INSERT INTO domain (name, kind) VALUES ('example.org', 'local')")
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  children:\n    mail_db:\n      hosts:\n        localhost:\n"
        "          ansible_connection: local\n          ansible_python_interpreter: %s\n"
        "          mail_database_admin_password: %s\n          mail_database_port: %d\n"
        % (sys.executable, ADMIN_PASSWORD, mariadb.port))
    env = ansible_env(config=CONFIG)
    # The playbook's temporary file in this test's own directory: in /tmp the
    # other worker's run (the survey's text) has one of its own meanwhile.
    (tmp_path / "tmp").mkdir()
    env["TMPDIR"] = str(tmp_path / "tmp")

    def provision(*options):
        return playbook("-i", inventory, Path(REPO) / "playbooks" / "provision_users.yml", *options,
                        cwd=REPO, env=env, timeout=300)
    return provision


def test_users_from_a_csv_file_then_nothing_to_change(run, db, tmp_path):
    path = tmp_path / "users.csv"
    path.write_text(CSV)
    check = run("-e", "mailstack_users_csv=%s" % path, "--check")
    assert check.returncode == 0, check.stdout[-3000:]
    assert "created 2" in check.stdout and db.scalar("SELECT COUNT(*) FROM mailbox") == 0
    first = run("-e", "mailstack_users_csv=%s" % path)
    assert first.returncode == 0, first.stdout[-3000:]
    assert "created 2, updated 0" in first.stdout
    assert db.query("SELECT email, quota FROM mailbox ORDER BY email") == (
        ("csv1@example.org", 1024), ("csv2@example.org", 0))
    assert db.query("SELECT source, destination FROM alias") == (("sales@example.org", "csv1@example.org"),)
    second = run("-e", "mailstack_users_csv=%s" % path)
    assert second.returncode == 0 and "created 0, updated 0, removed 0, unchanged 2" in second.stdout
    assert "Csv1-secret-pw" not in first.stdout + first.stderr + check.stdout + second.stdout
    # No copy of the file (it holds passwords) is left behind; the three runs made one each.
    assert not list((tmp_path / "tmp").glob("ansible.*.csv"))


def test_the_csv_text_as_a_survey_gives_it(run, db):
    # As AWX passes a survey's answers: JSON extra variables.
    got = run("-e", json.dumps({"mailstack_users_csv_content": CSV.replace("csv2", "csv3")}))
    assert got.returncode == 0, got.stdout[-3000:]
    assert db.scalar("SELECT COUNT(*) FROM mailbox WHERE email = 'csv3@example.org'") == 1


@pytest.mark.parametrize("options, message", [
    ((), "mailstack_users_csv (a CSV file on the controller) or as"),
    (("-e", "mailstack_users_csv=/nonexistent.csv", "-e", "mailstack_users_csv_content=x"), "one of them"),
    (("-e", "mailstack_users_csv_content=x", "-e", "mailstack_users_update_password=sometimes"),
     "mailstack_users_update_password"),
])
def test_bad_input_is_refused_naming_the_variable(run, db, options, message):
    got = run(*options)
    assert got.returncode != 0 and message in got.stdout, got.stdout[-3000:]
    assert db.scalar("SELECT COUNT(*) FROM mailbox") == 0


def test_a_bad_row_changes_nothing_and_names_the_row(run, db, tmp_path):
    path = tmp_path / "users.csv"
    path.write_text(CSV + "not-an-address,pw,,\n")
    got = run("-e", "mailstack_users_csv=%s" % path)
    assert got.returncode != 0 and "not-an-address" in got.stdout, got.stdout[-3000:]
    assert db.scalar("SELECT COUNT(*) FROM mailbox") == 0
