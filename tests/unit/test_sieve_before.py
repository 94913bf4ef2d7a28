"""The global Sieve script of role dovecot (run before each user's), rendered
as the role renders it and run by Pigeonhole's own sieve-test against
messages: what the content filter marked as spam is filed into the spam
folder and nothing else runs; other mail is kept in the INBOX."""

import pathlib
import shutil
import subprocess
import tempfile

import pytest

from mailstack_testlib.templates import render

MESSAGE = "From: someone@outside.test\nTo: bob@example.test\nSubject: hello\n{header}\nbody\n"


@pytest.fixture
def tmp_dir():
    # sieve-test drops to the mail user (nobody), then reads the message
    # and the script: not under pytest's tmp_path, which only root enters.
    with tempfile.TemporaryDirectory(prefix="sieve-test-") as path:
        pathlib.Path(path).chmod(0o755)
        yield pathlib.Path(path)


@pytest.fixture
def run(tmp_dir):
    tmp_path = tmp_dir
    if not shutil.which("sieve-test"):
        pytest.fail("Pigeonhole missing: run scripts/test-host-packages.sh (dovecot-sieve)")
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail").chmod(0o777)
    conf = tmp_path / "sieve-test.conf"
    conf.write_text("mail_uid = nobody\nmail_gid = nogroup\nmail_location = maildir:%s\n" % (tmp_path / "mail"))

    def run(header, folder="Junk"):
        script = tmp_path / "before.sieve"
        script.write_text(render("dovecot", "etc/dovecot/sieve/before.sieve.j2", dovecot_sieve_spam_folder=folder))
        message = tmp_path / "message.eml"
        message.write_text(MESSAGE.format(header=header))
        for path in (script, message):
            path.chmod(0o644)
        result = subprocess.run(["sieve-test", "-c", str(conf), str(script), str(message)],
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        performed, _sep, keep = result.stdout.partition("Implicit keep:")
        return performed, keep
    return run


@pytest.mark.parametrize("header", ["X-Spam-Flag: YES", "X-Spam-Flag: yes"])
def test_spam_is_filed_into_the_spam_folder_and_not_kept(run, header):
    performed, keep = run(header)
    assert "store message in folder: Junk" in performed
    assert "(none)" in keep


@pytest.mark.parametrize("header", ["X-Spam-Flag: NO", "X-Spam-Status: No, score=1.2", "X-Other: YES"])
def test_other_mail_is_kept_in_the_inbox(run, header):
    performed, keep = run(header)
    assert "(none)" in performed
    assert "store message in folder: INBOX" in keep


def test_the_folder_is_the_roles_option(run):
    performed, _keep = run("X-Spam-Flag: YES", folder="Spam")
    assert "store message in folder: Spam" in performed
