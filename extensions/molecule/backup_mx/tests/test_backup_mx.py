"""The backup MX topology, checked the way it is meant to work: mail keeps
arriving while the primary is down, waits on the backup, and reaches the
right mailbox exactly once when the primary is back. The tests run in file
order; the failover test leaves 200 messages that the mirror test copies."""

import json
import time
import uuid

import pytest
import testinfra

import testlib

testinfra_hosts = ["podman://outside1"]

FAILOVER_MESSAGES = 200


@pytest.fixture(scope="module")
def mx1():
    return testinfra.get_host("podman://mx1")


@pytest.fixture(scope="module")
def mx2():
    return testinfra.get_host("podman://mx2")


def sql(host, query):
    return host.check_output("mariadb -N -B mail -e %s" % json.dumps(query))


def slave_status(host):
    out = host.check_output("mariadb -e 'SHOW SLAVE STATUS\\G'")
    status = {}
    for line in out.splitlines():
        if ":" in line:
            key, _sep, value = line.partition(":")
            status[key.strip()] = value.strip()
    return status


def wait(what, fn, timeout, step=1):
    deadline = time.time() + timeout
    value = fn()
    while not value and time.time() < deadline:
        time.sleep(step)
        value = fn()
    assert value, "timed out after %d s waiting for %s" % (timeout, what)
    return value


def maildir_files(host, user):
    out = host.run("find /var/vmail/example.test/%s/Maildir/new /var/vmail/example.test/%s/Maildir/cur "
                   "-type f 2>/dev/null" % (user, user)).stdout
    return [line for line in out.splitlines() if line]


def subjects(host, user, prefix):
    out = host.run("grep -h '^Subject: %s' /var/vmail/example.test/%s/Maildir/new/* "
                   "/var/vmail/example.test/%s/Maildir/cur/* 2>/dev/null" % (prefix, user, user)).stdout
    return [line.split(":", 1)[1].strip() for line in out.splitlines() if line]


def queue(host):
    return [json.loads(line) for line in host.run("postqueue -j").stdout.splitlines() if line.strip()]


def smtp(host, server, rcpt):
    """One SMTP dialogue from outside1 to server; returns the RCPT reply code."""
    out = host.check_output("""python3 - <<'EOF'
import json, smtplib
s = smtplib.SMTP("%s", 25, timeout=30)
s.ehlo("outside1.outside.test")
s.mail("someone@outside.test")
code, msg = s.rcpt("%s")
s.quit()
print(json.dumps([code, msg.decode()]))
EOF""" % (server, rcpt))
    return json.loads(out.strip().splitlines()[-1])


def test_dns_mx_priorities(host):
    answers = sorted(host.check_output("dig +short MX example.test").splitlines())
    assert answers == ["10 mx2.example.test.", "5 mx1.example.test."]


def test_users_provisioned_on_the_primary_are_on_the_replica(mx1, mx2):
    emails = "SELECT email FROM mailbox ORDER BY email"
    assert sql(mx1, emails).split() == ["alice@example.test", "bob@example.test"]
    assert wait("replication of the users", lambda: sql(mx2, emails).split() == sql(mx1, emails).split(), 30)
    # A change on the primary reaches the replica.
    sql(mx1, "UPDATE mailbox SET quota = 123456789 WHERE email = 'bob@example.test'")
    wait("replication of an update",
         lambda: sql(mx2, "SELECT quota FROM mailbox WHERE email = 'bob@example.test'") == "123456789", 30)
    sql(mx1, "UPDATE mailbox SET quota = 0 WHERE email = 'bob@example.test'")


def test_replica_is_healthy_caught_up_and_read_only(mx1, mx2):
    status = slave_status(mx2)
    assert status["Slave_IO_Running"] == "Yes", status
    assert status["Slave_SQL_Running"] == "Yes", status
    assert status["Using_Gtid"] == "Slave_Pos", status
    assert status["Seconds_Behind_Master"] == "0", status
    primary_pos = mx1.check_output("mariadb -N -B -e 'SELECT @@gtid_binlog_pos'")
    wait("the replica to reach the primary's GTID position",
         lambda: mx2.check_output("mariadb -N -B -e 'SELECT @@gtid_slave_pos'") == primary_pos, 30)
    assert mx2.check_output("mariadb -N -B -e 'SELECT @@read_only'") == "1"


def test_replication_runs_over_verified_tls_and_catches_up_after_a_primary_restart(mx1, mx2):
    status = slave_status(mx2)
    assert (status["Master_SSL_Allowed"], status["Master_SSL_Verify_Server_Cert"], status["Master_SSL_CA_File"]) \
        == ("Yes", "Yes", "/etc/ssl/certs/ca-certificates.crt"), status
    # The replication account refuses a plain connection.
    plain = mx2.run("mariadb --skip-ssl -h %s -u mail_repl -plab-replication-password -e 'SELECT 1'"
                    % status["Master_Host"])
    assert plain.rc != 0 and "Access denied" in plain.stderr, plain.stderr
    assert set(sql(mx1, "SELECT ssl_type FROM mysql.user WHERE user = 'mail_repl'").split()) == {"ANY"}
    # The primary restarts: the replica reconnects (over TLS) and catches up.
    mx1.check_output("systemctl restart mariadb")
    quota = "SELECT quota FROM mailbox WHERE email = 'bob@example.test'"
    sql(mx1, "UPDATE mailbox SET quota = 7654321 WHERE email = 'bob@example.test'")
    started = time.time()
    wait("replication after the primary restarted", lambda: sql(mx2, quota) == "7654321", 120)
    print("the replica caught up %.1f s after the primary restarted" % (time.time() - started))
    sql(mx1, "UPDATE mailbox SET quota = 0 WHERE email = 'bob@example.test'")
    wait("replication of the reset", lambda: sql(mx2, quota) == "0", 60)
    assert slave_status(mx2)["Master_SSL_Allowed"] == "Yes"


def test_the_report_shows_the_replica_its_lag_and_a_stopped_sql_thread(mx1, mx2):
    report, out = testlib.report("backup_mx")
    replica = report["hosts"]["mx2"]["mailstack"]["database"]
    assert replica["role"] == "replica" and replica["replication"]["healthy"], replica
    assert replica["replication"]["seconds_behind"] == 0, replica
    assert "mx2: " in out and "database replica, healthy, lag 0 s" in out
    assert report["hosts"]["mx1"]["mailstack"]["database"]["role"] == "primary"
    assert report["problems"] == [], report["problems"]
    mx2.check_output("mariadb -e 'STOP SLAVE SQL_THREAD'")
    try:
        report, out = testlib.report("backup_mx")
        assert "database replica, NOT healthy, lag unknown" in out
        assert [p for p in report["problems"] if p.startswith("mx2: database: replication is not healthy")
                and "SQL thread is not running" in p], report["problems"]
    finally:
        mx2.check_output("mariadb -e 'START SLAVE SQL_THREAD'")
    wait("the replica's SQL thread", lambda: slave_status(mx2)["Slave_SQL_Running"] == "Yes", 30)


def test_backup_relays_for_the_database_only(host, mx2):
    # Known recipient: accepted (mx2 reads its own replica).
    assert smtp(host, "mx2.example.test", "alice@example.test")[0] == 250
    # An alias of the domain: accepted.
    assert smtp(host, "mx2.example.test", "sales@example.test")[0] == 250
    # Unknown recipient: refused in the SMTP dialogue, so no backscatter later.
    code, msg = smtp(host, "mx2.example.test", "nobody@example.test")
    assert code == 550, msg
    # Another domain: no relay.
    code, msg = smtp(host, "mx2.example.test", "friend@elsewhere.test")
    assert code == 554, msg
    assert mx2.check_output("postconf -h maximal_queue_lifetime") == "10d"


def bounces(host):
    return int(host.check_output("grep -c 'status=bounced' /var/log/mail.log || true") or 0)


def test_nothing_lost_while_the_primary_is_down(host, mx1, mx2):
    before = len(maildir_files(mx1, "alice"))
    bounced = {h: bounces(h) for h in (host, mx1, mx2)}
    tag = "failover-%s" % uuid.uuid4().hex[:8]
    mx1.check_output("systemctl stop postfix")
    try:
        # outside1's Postfix finds MX 5 (mx1) refusing connections and hands
        # every message to MX 10 (mx2).
        host.check_output(
            "for i in $(seq %d); do printf 'From: someone@outside.test\\nTo: alice@example.test\\n"
            "Subject: %s-%%03d\\n\\nsent while mx1 is down\\n' $i | "
            "/usr/sbin/sendmail -f someone@outside.test alice@example.test; done" % (FAILOVER_MESSAGES, tag))
        wait("outside1 to hand every message to mx2", lambda: not queue(host), 120)
        queued = wait("mx2 to hold the messages",
                      lambda: [m for m in queue(mx2)
                               if any(r["address"] == "alice@example.test" for r in m["recipients"])], 60)
        assert len(queued) == FAILOVER_MESSAGES
        assert len(maildir_files(mx1, "alice")) == before
        # With the primary down, mx2 still refuses an unknown recipient at RCPT time.
        code, msg = smtp(host, "mx2.example.test", "nobody@example.test")
        assert code == 550, msg
    finally:
        mx1.check_output("systemctl start postfix")
    # mx2 retries the primary (every 10 s here) and delivers everything.
    wait("mx2's queue to drain", lambda: not queue(mx2), 180, step=2)
    got = wait("delivery on mx1",
               lambda: len(subjects(mx1, "alice", tag)) >= FAILOVER_MESSAGES and subjects(mx1, "alice", tag), 60)
    assert sorted(got) == ["%s-%03d" % (tag, i) for i in range(1, FAILOVER_MESSAGES + 1)], "lost or duplicated"
    assert len(maildir_files(mx1, "alice")) == before + FAILOVER_MESSAGES
    assert {h: bounces(h) for h in (host, mx1, mx2)} == bounced, "a message bounced"


def test_mirror_brings_the_mailboxes_to_the_backup(mx1, mx2):
    mx2.check_output("systemctl start mailstack-maildir-sync.service")
    first = json.loads(mx2.check_output(
        "journalctl -u mailstack-maildir-sync.service -o cat --no-pager | grep '^{' | tail -n 1"))
    assert first["new"] >= FAILOVER_MESSAGES, first

    def names(host):
        return sorted(f.rsplit("/", 1)[1] for f in maildir_files(host, "alice"))

    assert names(mx2) == names(mx1)
    # A second run changes nothing.
    mx2.check_output("systemctl start mailstack-maildir-sync.service")
    second = json.loads(mx2.check_output(
        "journalctl -u mailstack-maildir-sync.service -o cat --no-pager | grep '^{' | tail -n 1"))
    assert second["changed"] is False, second
    assert second["new"] == 0 and second["flag_changes"] == 0, second


def test_mirror_key_allows_nothing_else(mx2):
    # The key opens only the read-only mirror on mx1: any other command is refused.
    result = mx2.run("ssh -i /root/.ssh/mailstack_mirror -o BatchMode=yes "
                     "-o UserKnownHostsFile=/etc/mailstack/mirror_known_hosts root@%s id"
                     % mx2.check_output("python3 -c \"import json; print(json.load(open("
                                        "'/etc/mailstack/maildir-sync.json'))['src'].split(':')[0])\""))
    assert result.rc != 0
    assert "refused" in result.stderr
    assert "uid=" not in result.stdout
