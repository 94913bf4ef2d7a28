"""The primary's database server stopped (issue 28, step R): mail keeps
flowing, because every reader lists every server of the database (Postfix's
`hosts`, Dovecot's `host=` per server) and mx1's lookups go to mx2's
replica; provisioning, which writes, stops until the primary is back.

Runs after test_backup_mx.py (file order); leaves one user more
(readers-<tag>@example.test), made once the primary is back.
"""

import json
import os
import time
import uuid

import pytest
import testinfra

import testlib
from mailstack_testlib import ansible_env, playbook

testinfra_hosts = ["podman://outside1"]

MESSAGES = 20
PRIMARY_DOWN_TIMEOUT = 180


@pytest.fixture(scope="module")
def mx1():
    return testinfra.get_host("podman://mx1")


@pytest.fixture(scope="module")
def mx2():
    return testinfra.get_host("podman://mx2")


def wait(what, fn, timeout, step=1):
    deadline = time.time() + timeout
    value = fn()
    while not value and time.time() < deadline:
        time.sleep(step)
        value = fn()
    assert value, "timed out after %d s waiting for %s" % (timeout, what)
    return value


def queue(host):
    return [json.loads(line) for line in host.run("postqueue -j").stdout.splitlines() if line.strip()]


def message_ids(host, user, tag):
    """Every Message-ID of the tag's messages in the user's Maildir, once per file."""
    out = host.run("grep -h -i '^Message-ID: <%s-' /var/vmail/example.test/%s/Maildir/new/* "
                   "/var/vmail/example.test/%s/Maildir/cur/* 2>/dev/null" % (tag, user, user)).stdout
    return [line.split(":", 1)[1].strip() for line in out.splitlines() if line]


def bounces(host):
    return int(host.check_output("grep -c 'status=bounced' /var/log/mail.log || true") or 0)


def provision(email):
    """playbooks/provision_users.yml for one new user: the completed process
    (not asserted: the test expects a failure while the primary is down)."""
    content = json.dumps({"mailstack_users_csv_content": "email,password\n%s,readers-lab-password\n" % email})
    return playbook("-i", os.path.join(testlib.state_dir("backup_mx"), "inventory"),
                    os.path.join(testlib.PROJECT, "playbooks", "provision_users.yml"), "-e", content,
                    env=ansible_env(), cwd=testlib.PROJECT)


def statistics(mx2, table, key):
    """{user or client: SELECT commands} since the statistics were flushed
    (MariaDB's userstat: information_schema.USER_STATISTICS, CLIENT_STATISTICS)."""
    out = mx2.check_output("mariadb -N -B -e 'SELECT %s, SELECT_COMMANDS FROM information_schema.%s'" % (key, table))
    return dict((line.split("\t")[0], int(line.split("\t")[1])) for line in out.splitlines() if line.strip())


def test_mail_flows_from_the_replica_while_the_primarys_database_is_down(host, mx1, mx2):
    tag = "readers-%s" % uuid.uuid4().hex[:8]
    mx1_addresses = set(mx1.check_output("hostname -I").split())
    bounced = {h: bounces(h) for h in (host, mx1, mx2)}
    # Count the replica's reads per account and per client from now on (the
    # flush kept out of the replica's binary log: a FLUSH is logged, and would
    # give the replica GTIDs of its own); and make mx1's Dovecot look alice
    # up again (its cache may hold her).
    mx2.check_output("mariadb -e 'SET GLOBAL userstat = 1; "
                     "FLUSH NO_WRITE_TO_BINLOG USER_STATISTICS, CLIENT_STATISTICS'")
    mx1.check_output("doveadm auth cache flush")
    mx1.check_output("systemctl stop mariadb")
    try:
        assert mx1.run("mariadb -e 'SELECT 1'").rc != 0
        started = time.time()
        host.check_output(
            "for i in $(seq -w %d); do printf 'From: someone@outside.test\\nTo: alice@example.test\\n"
            "Message-ID: <%s-'$i'@outside.test>\\nSubject: %s-'$i'\\n\\nsent while mx1 has no database\\n' | "
            "/usr/sbin/sendmail -f someone@outside.test alice@example.test; done" % (MESSAGES, tag, tag))
        got = wait("the %d messages in alice's mailbox on mx1" % MESSAGES,
                   lambda: len(message_ids(mx1, "alice", tag)) >= MESSAGES and message_ids(mx1, "alice", tag),
                   PRIMARY_DOWN_TIMEOUT, step=2)
        print("%d messages delivered %.1f s after the first was sent, mx1's database down"
              % (MESSAGES, time.time() - started))
        # Each once, by Message-ID.
        assert sorted(got) == ["<%s-%02d@outside.test>" % (tag, i) for i in range(1, MESSAGES + 1)], \
            "lost or duplicated"
        # Delivered by mx1 itself (no 4xx sent them to the backup MX), nothing left queued.
        assert not queue(host) and not queue(mx1), (queue(host), queue(mx1))
        assert int(mx2.run("grep -c '%s' /var/log/mail.log" % tag).stdout.strip() or 0) == 0, "went through mx2"
        # mx1's Postfix read the replica (its Postfix took no mail
        # meanwhile), from mx1's addresses.
        users = statistics(mx2, "USER_STATISTICS", "USER")
        assert users.get("mail_postfix", 0) > 0, users
        # mx1's Dovecot too: a login, its cache emptied first. (mx2's
        # USER_STATISTICS counted 0 SELECTs for mail_dovecot in a suite run
        # while LMTP had just delivered the 20 messages above, each after a
        # userdb lookup; why is not known (Dovecot keeps its connection
        # open), so the login is the proof.)
        mx1.check_output("doveadm auth cache flush")
        login = mx1.run("doveadm auth test alice@example.test alice-lab-password")
        assert login.rc == 0 and "auth succeeded" in login.stdout, (login.stdout, login.stderr)
        clients = statistics(mx2, "CLIENT_STATISTICS", "CLIENT")
        assert sum(n for client, n in clients.items() if client in mx1_addresses) > 0, (clients, mx1_addresses)
        # Those accounts take TLS only.
        accounts = mx2.check_output(
            "mariadb -N -B -e \"SELECT DISTINCT ssl_type FROM mysql.user WHERE user IN ('mail_postfix', "
            "'mail_dovecot') AND host NOT IN ('localhost', '127.0.0.1')\"")
        assert accounts.split() == ["ANY"], accounts
        # Provisioning writes to the primary: it stops, and says so.
        refused = provision("%s@example.test" % tag)
        assert refused.returncode != 0, refused.stdout[-2000:]
        # (ansible-core prints a failed task's message on stderr.)
        assert "Cannot connect to the mail database" in refused.stdout + refused.stderr, \
            (refused.stdout + refused.stderr)[-2000:]
    finally:
        mx1.check_output("systemctl start mariadb")
        mx2.run("mariadb -e 'SET GLOBAL userstat = 0'")
    assert {h: bounces(h) for h in (host, mx1, mx2)} == bounced, "a message bounced"
    # Back: provisioning works again and the replica follows.
    again = provision("%s@example.test" % tag)
    assert again.returncode == 0, again.stdout[-3000:]
    query = "SELECT COUNT(*) FROM mailbox WHERE email = '%s@example.test'" % tag
    wait("the replica to catch up with the primary",
         lambda: mx2.check_output("mariadb -N -B mail -e \"%s\"" % query) == "1", 120, step=2)
