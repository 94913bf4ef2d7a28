"""The database servers each reader lists, as the role templates write them:
Postfix's maps (one `hosts` line, the servers space-separated, in the
wiring's order: mysql_table(5) tries the socket, localhost, before the TCP
hosts) and Dovecot's SQL connect line (one host= per server: Dovecot 2.3
connects to each and sends its queries round robin). Rendered with Jinja2
from the role templates; tests/integration/test_reader_failover.py hands them
to postmap against real servers."""

import pytest

from mailstack_testlib.templates import render, setting

BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def postfix_map(hosts, ca_file="", item="virtual_mailboxes"):
    return render("postfix", "etc/postfix/sql/map.cf.j2", postfix_db_hosts=hosts, postfix_db_ca_file=ca_file,
                  postfix_db_password="pf-secret", item=item)


def dovecot_sql(hosts, ca_file="", mode="store"):
    return render("dovecot", "etc/dovecot/dovecot-sql.conf.ext.j2", dovecot_db_hosts=hosts,
                  dovecot_db_ca_file=ca_file, dovecot_db_password="dc-secret", dovecot_mode=mode,
                  dovecot_proxy_networks=[], dovecot_lmtp_proxy=False, dovecot_login_proxy_maybe=False)


@pytest.mark.parametrize("hosts, line", [
    (["localhost"], "localhost"),
    (["10.0.0.53"], "10.0.0.53"),
    (["localhost", "10.0.0.2"], "localhost 10.0.0.2"),
    (["10.0.0.53", "10.0.0.54", "10.0.0.55"], "10.0.0.53 10.0.0.54 10.0.0.55"),
])
def test_postfix_lists_every_server_on_one_hosts_line(hosts, line):
    text = postfix_map(hosts, BUNDLE if hosts != ["localhost"] else "")
    assert setting(text, "hosts") == line
    assert [ln for ln in text.splitlines() if ln.startswith("hosts")] == ["hosts = " + line]


def test_postfix_verifies_every_server_with_one_tls_setting():
    text = postfix_map(["localhost", "10.0.0.2"], BUNDLE)
    assert (setting(text, "tls_CAfile"), setting(text, "tls_verify_cert")) == (BUNDLE, "yes")
    assert "tls_CAfile" not in postfix_map(["localhost"])


@pytest.mark.parametrize("hosts, start", [
    (["localhost"], "host=localhost dbname=mail "),
    (["localhost", "10.0.0.2"], "host=localhost host=10.0.0.2 dbname=mail "),
    (["10.0.0.53", "10.0.0.54"], "host=10.0.0.53 host=10.0.0.54 dbname=mail "),
    ([], "dbname=mail "),
])
@pytest.mark.parametrize("mode", ["store", "proxy"])
def test_dovecot_gives_one_host_per_server_in_order(hosts, start, mode):
    connect = setting(dovecot_sql(hosts, mode=mode), "connect")
    assert connect.startswith(start), connect
    assert connect.count("host=") == len(hosts)


def test_dovecot_reads_the_tls_settings_on_every_connect_to_every_server():
    connect = setting(dovecot_sql(["localhost", "10.0.0.2"], BUNDLE), "connect")
    assert connect.endswith("password=dc-secret option_file=/etc/dovecot/mailstack-db.cnf "
                            "option_group=mailstack-dovecot"), connect
    assert "option_file" not in setting(dovecot_sql(["localhost"]), "connect")
