"""The mail database on its own host (ns1), read by the mail server (mx1)
over the network through least-privilege accounts, as the wiring set them up."""

import os
import re
import time

import pytest
import testinfra

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())


def latest_migration():
    """The newest migration this checkout's mail_schema applies."""
    with open(os.path.join(PROJECT, "plugins", "module_utils", "schema.py")) as f:
        return max(int(v) for v in re.findall(r"^    \((\d+), '", f.read(), re.M))


# `host` is the mail server, a client of the database.
testinfra_hosts = ["podman://mx1"]


@pytest.fixture(scope="module")
def db():
    return testinfra.get_host("podman://ns1")


def sql(host, user, password, query, via="ns1"):
    """Run a query as `user` over TCP, from the mail server."""
    return host.run("mariadb -h {} -u {} -p{} -N -B mail -e {}".format(
        via, user, password, "'" + query.replace("'", "'\\''") + "'"))


def test_the_database_listens_on_the_network(db):
    assert db.service("mariadb").is_running and db.service("mariadb").is_enabled
    listening = db.check_output("ss -Htln 'sport = :3306'")
    assert "*:3306" in listening or "0.0.0.0:3306" in listening, listening


def test_schema_is_at_the_collection_version(db):
    assert latest_migration() >= 3
    assert db.check_output("mariadb -N -B mail -e 'SELECT MAX(version) FROM schema_version'") == str(latest_migration())
    tables = set(db.check_output("mariadb -N -B mail -e 'SHOW TABLES'").split())
    assert {"domain", "mailbox", "alias", "mailbox_host", "mailbox_move", "schema_version"} <= tables


def test_site_yml_made_the_inventorys_domains(db):
    """site.yml's play "Mail domains" made the domains of mailstack_domains
    (converge.yml only adds a relay domain of its own, and the users)."""
    rows = db.check_output("mariadb -N -B mail -e \"SELECT name, kind, active FROM domain ORDER BY name\"")
    domains = [line.split("\t") for line in rows.splitlines()]
    assert ["example.net", "local", "1"] in domains and ["example.test", "local", "1"] in domains, domains
    assert ["legacy.example.test", "relay", "1"] in domains, domains


def test_a_new_user_gets_the_default_quota_of_its_domain(db):
    """example.net's default_quota (1G), which alice of example.test does not
    get; Dovecot enforces the stored quota."""
    quotas = db.check_output("mariadb -N -B mail -e \"SELECT email, quota FROM mailbox WHERE email IN "
                             "('dave@example.net', 'alice@example.test') ORDER BY email\"")
    assert [line.split("\t") for line in quotas.splitlines()] == [
        ["alice@example.test", "0"], ["dave@example.net", str(1024 ** 3)]]
    mx1 = testinfra.get_host("podman://mx1")
    # "User quota STORAGE <used KiB> <limit KiB> <percent>"
    limits = mx1.check_output("doveadm quota get -u dave@example.net")
    storage = [line.split() for line in limits.splitlines() if line.split()[2:3] == ["STORAGE"]]
    assert storage and storage[0][4] == str(1024 ** 2), limits


def test_provisioned_user_row_and_hash(db):
    row = db.check_output("mariadb -N -B mail -e \"SELECT email, domain, active, password FROM mailbox "
                          "WHERE email = 'alice@example.test'\"").split("\t")
    assert row[:3] == ["alice@example.test", "example.test", "1"]
    assert row[3].startswith("{SHA512-CRYPT}$6$")


def test_postfix_account_reads_addresses_but_not_hashes(host):
    ok = sql(host, "mail_postfix", "lab-postfix-password", "SELECT email FROM mailbox")
    assert ok.rc == 0 and "alice@example.test" in ok.stdout, ok.stderr
    denied = sql(host, "mail_postfix", "lab-postfix-password", "SELECT password FROM mailbox")
    assert denied.rc != 0 and "denied" in denied.stderr
    write = sql(host, "mail_postfix", "lab-postfix-password", "DELETE FROM alias")
    assert write.rc != 0 and "denied" in write.stderr


def test_dovecot_account_reads_hashes_and_cannot_write(host):
    ok = sql(host, "mail_dovecot", "lab-dovecot-password", "SELECT password FROM mailbox")
    assert ok.rc == 0 and ok.stdout.startswith("{SHA512-CRYPT}"), ok.stderr
    write = sql(host, "mail_dovecot", "lab-dovecot-password", "UPDATE mailbox SET active = 0")
    assert write.rc != 0 and "denied" in write.stderr


def test_provisioning_account_is_local_only(host, db):
    remote = sql(host, "mailadmin", "lab-admin-password", "SELECT 1")
    assert remote.rc != 0 and "access denied" in remote.stderr.lower(), remote.stderr
    local = db.run("mariadb -u mailadmin -plab-admin-password -N -B mail -e 'SELECT COUNT(*) FROM domain'")
    assert local.rc == 0 and int(local.stdout) >= 2, local.stderr


def test_accounts_accept_only_the_mail_servers_addresses(db):
    hosts = set(db.check_output("mariadb -N -B -e \"SELECT host FROM mysql.user WHERE user = 'mail_postfix'\"")
                .split())
    mx1 = testinfra.get_host("podman://mx1")
    addresses = set(mx1.check_output("hostname -I").split())
    assert hosts - {"localhost", "127.0.0.1"} == addresses, (hosts, addresses)


def db_address(host):
    """The database address the mail server's Postfix connects to."""
    conf = host.file("/etc/postfix/sql/virtual_mailboxes.cf").content_string
    return re.search(r"^hosts = (.+)$", conf, re.M).group(1).strip()


def test_remote_accounts_require_tls_and_the_services_verify_the_server(host, db):
    address = db_address(host)
    assert address != "localhost"
    # The accounts of the mail server's addresses require TLS; the local
    # ones do not.
    rows = db.check_output("mariadb -N -B -e \"SELECT user, host, ssl_type FROM mysql.user WHERE user IN "
                           "('mail_postfix', 'mail_dovecot')\"").splitlines()
    for user, account_host, ssl_type in (row.split("\t") for row in rows):
        want = "" if account_host in ("localhost", "127.0.0.1") else "ANY"
        assert ssl_type == want, (user, account_host, ssl_type)
    # A plain connection is refused, a verified one is encrypted.
    login = "-h {} -u mail_postfix -plab-postfix-password -N -B".format(address)
    plain = host.run("mariadb --skip-ssl {} -e 'SELECT 1'".format(login))
    assert plain.rc != 0 and "Access denied" in plain.stderr, plain.stderr
    verified = host.run("mariadb --ssl-verify-server-cert --ssl-ca=/etc/ssl/certs/ca-certificates.crt {} "
                        "-e \"SHOW SESSION STATUS LIKE 'Ssl_version'\"".format(login))
    assert verified.rc == 0 and verified.stdout.split()[1].startswith("TLSv1."), verified.stderr
    # Postfix and Dovecot look up through those accounts, verifying the
    # server's certificate (chain and address).
    conf = host.file("/etc/postfix/sql/virtual_mailboxes.cf").content_string
    assert "tls_verify_cert = yes" in conf and "tls_CAfile = /etc/ssl/certs/ca-certificates.crt" in conf
    assert host.check_output("postmap -q alice@example.test mysql:/etc/postfix/sql/virtual_mailboxes.cf")
    assert "option_file=/etc/dovecot/mailstack-db.cnf" in host.file("/etc/dovecot/dovecot-sql.conf.ext").content_string
    assert "ssl-verify-server-cert = 1" in host.file("/etc/dovecot/mailstack-db.cnf").content_string.splitlines()
    assert "home" in host.check_output("doveadm user alice@example.test")


def test_dovecot_reconnects_over_tls_after_a_database_restart(host, db):
    """Dovecot 2.3 gives its connect line's ssl_ca to the first connection
    only: after a lost connection it reconnected in plain text, which the
    accounts refuse (every login failed until Dovecot restarted). The
    option file is read on every connect."""
    assert "home" in host.check_output("doveadm user alice@example.test")
    since = db.check_output("date '+%Y-%m-%d %H:%M:%S'")
    db.check_output("systemctl restart mariadb")
    deadline = time.time() + 60
    while True:
        time.sleep(3)
        # The first lookup after the restart finds the connection gone and reconnects.
        result = host.run("doveadm auth test alice@example.test alice-lab-password")
        if result.rc == 0 or time.time() > deadline:
            break
    assert result.rc == 0, result.stdout + result.stderr
    denied = db.run("journalctl --no-pager -u mariadb --since '%s' | grep -c \"Access denied for user 'mail_dovecot'\""
                    % since)
    assert denied.stdout.strip() == "0", denied.stdout


def test_wrong_password_refused(host):
    bad = sql(host, "mail_dovecot", "not-the-password", "SELECT 1")
    assert bad.rc != 0 and "access denied" in bad.stderr.lower()


def test_database_passwords_only_in_files_their_service_reads(host):
    for path, group in (("/etc/postfix/sql/virtual_mailboxes.cf", "postfix"),
                        ("/etc/dovecot/dovecot-sql.conf.ext", "dovecot")):
        f = host.file(path)
        assert (f.user, f.group, f.mode) == ("root", group, 0o640), path
    assert "lab-postfix-password" in host.file("/etc/postfix/sql/virtual_mailboxes.cf").content_string
    leaked = host.run("grep -rl -e lab-postfix-password -e lab-dovecot-password /etc --exclude-dir=sql "
                      "--exclude=dovecot-sql.conf.ext")
    assert leaked.stdout == "", leaked.stdout
