"""Role mail_database: a real MariaDB with the schema and least-privilege accounts."""

import pytest
import testinfra

# `host` is the client host (ms-db-app1); `db` the database server.
testinfra_hosts = ["podman://ms-db-app1"]

DB = "ms-db-db1"


@pytest.fixture(scope="module")
def db():
    return testinfra.get_host("podman://" + DB)


def sql(host, user, password, query, via=DB):
    """Run a query as `user` over TCP (from the client host: over the network)."""
    cmd = "mariadb -h {} -u {} -p{} -N -B mail -e {}".format(
        via, user, password, "'" + query.replace("'", "'\\''") + "'")
    return host.run(cmd)


def test_mariadb_runs_and_listens(db):
    assert db.service("mariadb").is_running
    assert db.service("mariadb").is_enabled
    assert db.socket("tcp://0.0.0.0:3306").is_listening


def test_schema_is_at_the_collection_version(db):
    out = db.check_output("mariadb -N -B mail -e 'SELECT MAX(version) FROM schema_version'")
    assert out == "1"
    tables = set(db.check_output("mariadb -N -B mail -e 'SHOW TABLES'").split())
    assert {"domain", "mailbox", "alias", "mailbox_host", "schema_version"} <= tables


def test_provisioned_user_row_and_hash(db):
    row = db.check_output(
        "mariadb -N -B mail -e \"SELECT email, domain, active, password FROM mailbox\"").split("\t")
    assert row[:3] == ["alice@example.test", "example.test", "1"]
    assert row[3].startswith("{SHA512-CRYPT}$6$")


def test_postfix_account_reads_addresses_but_not_hashes(host):
    ok = sql(host, "mail_postfix", "lab-postfix-secret", "SELECT email FROM mailbox")
    assert ok.rc == 0 and "alice@example.test" in ok.stdout, ok.stderr
    denied = sql(host, "mail_postfix", "lab-postfix-secret", "SELECT password FROM mailbox")
    assert denied.rc != 0 and "denied" in denied.stderr
    write = sql(host, "mail_postfix", "lab-postfix-secret", "DELETE FROM alias")
    assert write.rc != 0 and "denied" in write.stderr


def test_dovecot_account_reads_hashes_and_cannot_write(host):
    ok = sql(host, "mail_dovecot", "lab-dovecot-secret", "SELECT password FROM mailbox")
    assert ok.rc == 0 and ok.stdout.startswith("{SHA512-CRYPT}"), ok.stderr
    write = sql(host, "mail_dovecot", "lab-dovecot-secret", "UPDATE mailbox SET active = 0")
    assert write.rc != 0 and "denied" in write.stderr


def test_provisioning_account_is_local_only(host):
    remote = sql(host, "mailadmin", "lab-admin-secret", "SELECT 1")
    assert remote.rc != 0 and "denied" in remote.stderr.lower()


def test_wrong_password_refused(host):
    bad = sql(host, "mail_dovecot", "not-the-password", "SELECT 1")
    assert bad.rc != 0 and "denied" in bad.stderr.lower()


def test_replication_account(host):
    ok = host.run("mariadb -h {} -u mail_repl -plab-repl-secret -N -B -e 'SHOW GRANTS'".format(DB))
    assert ok.rc == 0, ok.stderr
    assert "REPLICATION SLAVE" in ok.stdout


def test_no_secret_in_the_config(db):
    conf = db.file("/etc/mysql/mariadb.conf.d/60-mailstack.cnf").content_string
    assert "secret" not in conf
