"""The wiring: an inventory in, the role options of every host out.

Each test is a table: the inventory's groups and host variables (facts as
site.yml gathers them), and the options the wiring gives each host. Options
the inventory sets are left out (site.yml then keeps the inventory's value).
"""

import hashlib

import pytest

from ansible_collections.mailops.mailstack.plugins.filter.wiring import mail_address_errors, mail_wiring
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.registry import role_default

PASSWORDS = {"mail_database_postfix_password": "pf", "mail_database_dovecot_password": "dc",
             "mail_database_roundcube_password": "rc"}


def facts(v4=None, v6=None, vcpus=2):
    f = {"processor_vcpus": vcpus}
    if v4:
        f["default_ipv4"] = {"address": v4}
    if v6:
        f["default_ipv6"] = {"address": v6}
    return f


def inventory(groups, hosts, common=None):
    """groups: {group: [hosts]}; hosts: {host: {vars}}; common: vars of every host."""
    names = sorted(set(hosts) | set(h for members in groups.values() for h in members))
    hostvars = {}
    for name in names:
        hv = dict(common or {})
        hv.update(hosts.get(name, {}))
        hostvars[name] = hv
    g = dict(groups)
    g["all"] = names
    g.setdefault("ungrouped", [])
    return g, hostvars


def wired(groups, hosts, common=None):
    g, hv = inventory(groups, hosts, dict(PASSWORDS, mailstack_domain="example.test", **(common or {})))
    result = mail_wiring(g, hv)
    assert result["errors"] == [], result["errors"]
    return result["hosts"]


SINGLE_WITH_FILTER_HOST = dict(
    groups=dict(mail_dns=["ns1"], mail_mx=["mx1"], mail_store=["mx1"], mail_db=["mx1"], mail_webmail=["mx1"],
                mail_filter=["filter1"]),
    hosts=dict(ns1={"ansible_facts": facts("10.0.0.53")}, mx1={"ansible_facts": facts("10.0.0.1")},
               filter1={"ansible_facts": facts("10.0.0.9", vcpus=4)}, outside1={"ansible_facts": facts("10.0.0.99")}))


def test_single_with_a_filter_host_and_the_database_on_the_mail_server():
    hosts = wired(**SINGLE_WITH_FILTER_HOST)
    assert hosts["mx1"]["roles"] == [
        "common", "dkim", "dmarc", "tls", "mail_database", "nfs_client", "postfix", "dovecot", "webmail", "firewall"]
    assert hosts["mx1"]["options"] == {
        "dkim_domains": ["example.test"],
        "dkim_authserv_id": "mx1.example.test",
        "dmarc_authserv_id": "mx1.example.test",
        "dmarc_ignore_hosts": ["127.0.0.1", "::1"],
        "mail_database_mode": "primary",
        "mail_database_server_id": 1,
        "mail_database_binlog": False,
        "mail_database_bind_address": "127.0.0.1",
        "mail_database_postfix_hosts": ["localhost", "127.0.0.1"],
        "mail_database_dovecot_hosts": ["localhost", "127.0.0.1"],
        # Nobody reads it over the network: no TLS.
        "mail_database_tls": False,
        # The mail domain, made in the database by site.yml.
        "mail_database_domains": [{"name": "example.test", "kind": "local"}],
        # The webmail host serves the MTA-STS policy under its own name.
        # The webmail's public name, and the MTA-STS policy's.
        "tls_names": ["mx1", "mx1.example.test", "webmail.example.test", "mta-sts.example.test"],
        # The lab CA is kept on the first mail server.
        "tls_ca_host": "mx1",
        "postfix_mode": "mailbox",
        "postfix_myhostname": "mx1.example.test",
        "postfix_db_hosts": ["localhost"],
        "postfix_db_ca_file": "",
        "postfix_milters": ["inet:127.0.0.1:8891", "inet:127.0.0.1:8893"],
        "postfix_quota_policy": "inet:127.0.0.1:12340",
        "postfix_content_filter": True,
        "postfix_content_filter_host": "10.0.0.9",
        "postfix_reinject_clients": ["10.0.0.9/32"],
        "postfix_content_filter_port": 10024,
        "postfix_content_filter_concurrency": 8,  # two per core of filter1 (4)
        "dovecot_mode": "store",
        "dovecot_db_hosts": ["localhost"],
        "dovecot_db_ca_file": "",
        "dovecot_postfix_local": True,
        "dovecot_quota_status": True,
        "dovecot_quota_status_listen": "127.0.0.1",
        # Sieve's replies go out through the local Postfix (signed, filtered).
        "dovecot_submission_host": "127.0.0.1:25",
        "dovecot_managesieve": True,
        # Roundcube: the mail server by the name its certificate carries for
        # clients (connecting to its address), its database by the socket.
        "webmail_imap_host": "mx1.example.test",
        "webmail_imap_address": "10.0.0.1",
        "webmail_smtp_host": "mx1.example.test",
        "webmail_smtp_address": "10.0.0.1",
        "webmail_server_aliases": ["mx1.example.test", "webmail.example.test"],
        "webmail_db_host": "localhost",
        "webmail_db_port": 3306,
        "webmail_db_name": "roundcube",
        "webmail_db_user": "roundcube",
        "webmail_db_ca_file": "",
        "mail_database_roundcube_hosts": ["localhost", "127.0.0.1"],
        "webmail_mta_sts_policies": [{
            "server_name": "mta-sts.example.test",
            "policy": "version: STSv1\r\nmode: testing\r\nmx: mx1.example.test\r\nmax_age: 604800\r\n"}],
    }
    assert hosts["mx1"]["copies"] == {"postfix_db_password": "mail_database_postfix_password",
                                      "dovecot_db_password": "mail_database_dovecot_password",
                                      "webmail_db_password": "mail_database_roundcube_password"}
    assert hosts["filter1"] == {"roles": ["common", "content_filter", "firewall"], "copies": {}, "required": [
        {"option": "content_filter_clamav_signature_files", "rule": "non_empty",
         "why": "ClamAV needs signatures: files on the controller, or set content_filter_clamav_private_mirror "
                "(the role never uses the public mirrors)"}], "options": {
        "content_filter_clients": ["10.0.0.1"],
        "content_filter_reinject_host": "*",
        "content_filter_reinject_port": 10025,
        "content_filter_hostname": "filter1.example.test",
    }, "listens": [
        {"port": 22, "proto": "tcp", "service": "SSH: Ansible and the administrators", "role": "common",
         "peers": ["controller"]},
        {"port": 10024, "proto": "tcp", "service": "amavisd-new: mail to filter (SMTP)", "role": "content_filter",
         "peers": ["mx1"]}]}
    assert hosts["ns1"]["roles"] == ["common", "dns", "firewall"]
    zone = hosts["ns1"]["options"]["dns_zones"][0]
    assert zone["name"] == "example.test"
    assert {"name": "@", "type": "MX", "value": "5 mx1.example.test."} in zone["records"]
    assert {"name": "filter1", "type": "A", "value": "10.0.0.9"} in zone["records"]
    # MTA-STS: the policy's name points at the webmail host, its id is the
    # policy's hash; TLS reports go to the postmaster.
    assert {"name": "mta-sts", "type": "A", "value": "10.0.0.1"} in zone["records"]
    # The webmail's public name, in its certificate and nginx's server_name.
    assert {"name": "webmail", "type": "A", "value": "10.0.0.1"} in zone["records"]
    policy = hosts["mx1"]["options"]["webmail_mta_sts_policies"][0]["policy"]
    assert {"name": "_mta-sts", "type": "TXT",
            "value": '"v=STSv1; id=%s"' % hashlib.sha256(policy.encode()).hexdigest()[:32]} in zone["records"]
    assert {"name": "_smtp._tls", "type": "TXT", "value": '"v=TLSRPTv1; rua=mailto:postmaster@example.test"'} \
        in zone["records"]
    # A host in no mail group gets the base role only.
    assert hosts["outside1"] == {"roles": ["common"], "options": {}, "copies": {}, "required": [], "listens": [
        {"port": 22, "proto": "tcp", "service": "SSH: Ansible and the administrators", "role": "common",
         "peers": ["controller"]}]}


def test_single_with_the_filter_on_the_mail_server():
    hosts = wired(dict(mail_mx=["mx1"], mail_store=["mx1"], mail_db=["mx1"], mail_filter=["mx1"]),
                  dict(mx1={"ansible_facts": facts("10.0.0.1", vcpus=3)}))
    o = hosts["mx1"]["options"]
    assert hosts["mx1"]["roles"] == ["common", "dkim", "dmarc", "tls", "mail_database", "content_filter", "nfs_client", "postfix", "dovecot", "firewall"]
    assert (o["postfix_content_filter_host"], o["postfix_reinject_clients"]) == ("127.0.0.1", ["127.0.0.1/32"])
    assert o["postfix_content_filter_concurrency"] == 6
    assert o["content_filter_clients"] == ["127.0.0.1"]
    assert "webmail_imap_host" not in o


def test_single_without_a_filter():
    hosts = wired(dict(mail_mx=["mx1"], mail_store=["mx1"], mail_db=["mx1"]),
                  dict(mx1={"ansible_facts": facts("10.0.0.1")}))
    o = hosts["mx1"]["options"]
    assert o["postfix_content_filter"] is False
    assert "postfix_content_filter_host" not in o and "postfix_reinject_clients" not in o


def test_single_with_the_database_on_another_host():
    hosts = wired(dict(mail_mx=["mx1"], mail_store=["mx1"], mail_db=["db1"]),
                  dict(mx1={"ansible_facts": facts("10.0.0.1", "fd00::1")}, db1={"ansible_facts": facts("10.0.0.5")}))
    db, mx = hosts["db1"]["options"], hosts["mx1"]["options"]
    assert hosts["db1"]["roles"] == ["common", "tls", "mail_database", "firewall"]
    # The database listens on the network and its read-only accounts accept
    # the mail server's addresses (both: it may connect from either).
    assert db["mail_database_bind_address"] == "*"
    assert db["mail_database_postfix_hosts"] == ["localhost", "127.0.0.1", "10.0.0.1", "fd00::1"]
    assert db["mail_database_dovecot_hosts"] == ["localhost", "127.0.0.1", "10.0.0.1", "fd00::1"]
    assert "mail_database_replication_hosts" not in db
    assert mx["postfix_db_hosts"] == mx["dovecot_db_hosts"] == ["10.0.0.5"]
    assert "postfix_db_password" not in hosts["db1"]["copies"]
    # Read over the network: over TLS, the readers verifying the address
    # they connect to against the certificate.
    assert db["mail_database_tls"] is True
    assert db["tls_names"] == ["db1", "db1.example.test", "10.0.0.5"]
    assert mx["postfix_db_ca_file"] == mx["dovecot_db_ca_file"] == "/etc/ssl/certs/ca-certificates.crt"


def test_an_acme_host_names_only_what_the_ca_can_check_and_webmail_connects_by_that_name():
    hosts = wired(SINGLE_WITH_FILTER_HOST["groups"],
                  dict(SINGLE_WITH_FILTER_HOST["hosts"], mx1={"ansible_facts": facts("10.0.0.1"), "tls_source": "acme"}))
    mx1 = hosts["mx1"]["options"]
    # No short name: the CA looks every name up in the DNS.
    assert mx1["tls_names"] == ["mx1.example.test", "webmail.example.test", "mta-sts.example.test"]
    # The web server answers the HTTP-01 challenges.
    assert mx1["tls_acme_webroot"] == "/var/www/acme"
    # Roundcube verifies the name it connects to.
    assert mx1["webmail_imap_host"] == mx1["webmail_smtp_host"] == "mx1.example.test"


def test_acme_on_a_database_read_over_the_network_or_without_a_domain_is_refused():
    g, hv = inventory(dict(mail_mx=["mx1"], mail_store=["mx1"], mail_db=["db1"]),
                      dict(mx1={"ansible_facts": facts("10.0.0.1"), "tls_source": "acme"},
                           db1={"ansible_facts": facts("10.0.0.5"), "tls_source": "acme"}),
                      dict(PASSWORDS))
    errors = mail_wiring(g, hv)["errors"]
    assert any(e.startswith("db1: tls_source=acme on a database host") for e in errors), errors
    assert "mx1: tls_source=acme needs mailstack_domain: the certificate names mx1.<domain>" in errors, errors


def _acme_tier(smtp=None, ns1=None, groups=None, common=None):
    """The sharded inventory with the SMTP tier on ACME (smtp: its extra vars)."""
    hosts = dict(SHARDED["hosts"])
    for h in ("smtp1", "smtp2"):
        hosts[h] = dict(SHARDED["hosts"][h], tls_source="acme", **(smtp or {}))
    hosts["ns1"] = dict(SHARDED["hosts"]["ns1"], **(ns1 or {}))
    return inventory(groups or SHARDED["groups"], hosts, dict(PASSWORDS, mailstack_domain="example.test",
                                                              **(common or {})))


def test_a_tier_whose_name_several_hosts_share_proves_it_by_dns01_on_the_first_dns_host():
    result = mail_wiring(*_acme_tier())
    assert result["errors"] == [], result["errors"]
    hosts = result["hosts"]
    for h in ("smtp1", "smtp2"):
        options = hosts[h]["options"]
        # One certificate per host: the shared name and its own.
        assert options["tls_names"] == ["%s.example.test" % h, "smtp.example.test"]
        assert options["tls_acme_challenge"] == "dns-01"
        assert options["tls_acme_dns_server"] == "10.0.0.53"
        assert options["tls_acme_dns_propagation_seconds"] == 5
        assert "tls_acme_webroot" not in options
        # No HTTP-01 listener on port 80.
        assert not [p for p in hosts[h]["listens"] if p["port"] == 80], hosts[h]["listens"]
        assert ("tls_acme_tsig_secret", "non_empty") in required(hosts)[h]
    ns1 = hosts["ns1"]["options"]
    assert ns1["dns_acme_zones"] == ["_acme-challenge.smtp1.example.test", "_acme-challenge.smtp.example.test",
                                     "_acme-challenge.smtp2.example.test"]
    assert ("dns_acme_tsig_secret", "non_empty") in required(hosts)["ns1"]
    zone = ns1["dns_zones"][0]
    assert [r for r in zone["records"] if r["type"] == "NS"] == [
        {"name": "_acme-challenge.%s" % n, "type": "NS", "value": "ns1.example.test."} for n in ("smtp1", "smtp", "smtp2")]
    # The proxy (one host, its names its own) keeps HTTP-01 when on ACME.
    assert "tls_acme_challenge" not in hosts["proxy1"]["options"]


def test_every_dns_host_delegates_the_challenges_and_only_the_first_holds_them():
    groups = dict(SHARDED["groups"], mail_dns=["ns1", "ns2"])
    g, hv = _acme_tier(groups=groups)
    hv["ns2"] = {"ansible_facts": facts("10.0.0.54"), **PASSWORDS, "mailstack_domain": "example.test"}
    g["all"].append("ns2")
    hosts = mail_wiring(g, hv)["hosts"]
    assert "dns_acme_zones" not in hosts["ns2"]["options"]
    assert ("dns_acme_tsig_secret", "non_empty") not in required(hosts)["ns2"]
    ns2_zone = hosts["ns2"]["options"]["dns_zones"][0]
    assert {"name": "_acme-challenge.smtp", "type": "NS", "value": "ns1.example.test."} in ns2_zone["records"]


def test_http01_on_a_shared_name_is_refused_naming_the_fix():
    errors = mail_wiring(*_acme_tier(smtp={"tls_acme_challenge": "http-01"}))["errors"]
    assert "smtp1: tls_source=acme with tls_acme_challenge=http-01 cannot certify smtp.example.test, which smtp1, " \
        "smtp2 share: the ACME server checks the name at one of their addresses; use tls_acme_challenge: dns-01 " \
        "(with tls_acme_tsig_secret) or provided certificates" in errors, errors
    assert not any(e.startswith("proxy1") for e in errors), errors


def test_the_inventory_wins_over_the_challenge_and_its_dns_server():
    """A site whose DNS is elsewhere names its server: no challenge zone nor
    delegation on the project's BIND, certbot's own propagation wait."""
    result = mail_wiring(*_acme_tier(smtp={"tls_acme_dns_server": "192.0.2.53"}))
    assert result["errors"] == [], result["errors"]
    hosts = result["hosts"]
    assert "tls_acme_dns_server" not in hosts["smtp1"]["options"]
    assert "tls_acme_dns_propagation_seconds" not in hosts["smtp1"]["options"]
    assert "dns_acme_zones" not in hosts["ns1"]["options"]
    assert not [r for r in hosts["ns1"]["options"]["dns_zones"][0]["records"] if r["type"] == "NS"]
    # A single host chosen for DNS-01 by the inventory.
    g, hv = inventory(SINGLE_WITH_FILTER_HOST["groups"],
                      dict(SINGLE_WITH_FILTER_HOST["hosts"], mx1={"ansible_facts": facts("10.0.0.1"),
                                                                  "tls_source": "acme", "tls_acme_challenge": "dns-01"}),
                      dict(PASSWORDS, mailstack_domain="example.test"))
    hosts = mail_wiring(g, hv)["hosts"]
    assert hosts["mx1"]["options"]["tls_acme_dns_server"] == "10.0.0.53"
    assert "_acme-challenge.mx1.example.test" in hosts["ns1"]["options"]["dns_acme_zones"]
    # The names the inventory gives are the ones the challenge zones serve.
    g, hv = _acme_tier(smtp={"tls_names": ["smtp.example.test", "mx.example.test"]})
    assert mail_wiring(g, hv)["hosts"]["ns1"]["options"]["dns_acme_zones"] == [
        "_acme-challenge.smtp.example.test", "_acme-challenge.mx.example.test"]


def test_dns01_without_a_dns_host_needs_its_server():
    groups = dict(SHARDED["groups"], mail_dns=[])
    errors = mail_wiring(*_acme_tier(groups=groups))["errors"]
    assert "smtp1: tls_acme_challenge=dns-01 needs tls_acme_dns_server (the address of the DNS server that takes " \
        "its RFC 2136 updates): the inventory has no mail_dns host" in errors, errors


def test_a_tsig_key_that_differs_is_named_but_never_shown():
    g, hv = _acme_tier(smtp={"tls_acme_tsig_secret": "c2lnbmluZy1zZWNyZXQ="},
                       ns1={"dns_acme_tsig_secret": "Y2hlY2tpbmctc2VjcmV0"})
    result = mail_wiring(g, hv)
    assert "smtp1: tls_acme_tsig_secret is not the dns_acme_tsig_secret of ns1, which takes its ACME DNS-01 updates: " \
        "both are the TSIG key its updates are signed and checked with" in result["errors"], result["errors"]
    assert "c2lnbmluZy1" not in repr(result) and "Y2hlY2tpbm" not in repr(result)
    # The same key (and the same algorithm and name): no error.
    g, hv = _acme_tier(common={"tls_acme_tsig_secret": "c2VjcmV0", "dns_acme_tsig_secret": "c2VjcmV0"})
    assert mail_wiring(g, hv)["errors"] == []
    g, hv = _acme_tier(common={"tls_acme_tsig_secret": "c2VjcmV0", "dns_acme_tsig_secret": "c2VjcmV0",
                               "dns_acme_tsig_algorithm": "hmac-sha512"})
    assert "smtp2: tls_acme_tsig_algorithm is not the dns_acme_tsig_algorithm of ns1, which takes its ACME DNS-01 " \
        "updates: both are the TSIG key its updates are signed and checked with" in mail_wiring(g, hv)["errors"]


def test_database_tls_turned_off_by_the_inventory_turns_it_off_for_its_readers():
    hosts = wired(dict(mail_mx=["mx1"], mail_store=["mx1"], mail_db=["db1"]),
                  dict(mx1={"ansible_facts": facts("10.0.0.1")},
                       db1={"ansible_facts": facts("10.0.0.5"), "mail_database_tls": False}))
    assert "mail_database_tls" not in hosts["db1"]["options"]
    mx = hosts["mx1"]["options"]
    assert mx["postfix_db_ca_file"] == mx["dovecot_db_ca_file"] == ""


BACKUP = dict(
    groups=dict(mail_dns=["ns1"], mail_mx=["mx1"], mail_store=["mx1"], mail_db=["mx1"],
                mail_backup_mx=["mx2"], mail_db_replica=["mx2"]),
    hosts=dict(ns1={"ansible_facts": facts("10.0.0.53")}, mx1={"ansible_facts": facts("10.0.0.1")},
               mx2={"ansible_facts": facts("10.0.0.2")}))


def test_backup_mx():
    hosts = wired(**BACKUP)
    mx1, mx2 = hosts["mx1"]["options"], hosts["mx2"]["options"]
    assert hosts["mx2"]["roles"] == ["common", "tls", "mail_database", "postfix", "backup_mx", "firewall"]
    assert (mx1["mail_database_mode"], mx1["mail_database_server_id"], mx1["mail_database_binlog"]) == \
        ("primary", 1, True)
    assert mx1["mail_database_bind_address"] == "*"
    assert mx1["mail_database_replication_hosts"] == ["10.0.0.2"]
    # Replicated over TLS: the primary's certificate names the address the
    # replica connects to. Its own readers use the socket first, then the
    # replica (lookups go on while the primary's server is down), with one
    # TLS setting for both: the socket's name, localhost, is in it too.
    assert mx1["mail_database_tls"] is True
    assert mx1["tls_names"] == ["mx1", "mx1.example.test", "10.0.0.1", "localhost"]
    assert mx1["postfix_db_hosts"] == mx1["dovecot_db_hosts"] == ["localhost", "10.0.0.2"]
    assert mx1["postfix_db_ca_file"] == mx1["dovecot_db_ca_file"] == "/etc/ssl/certs/ca-certificates.crt"
    # The backup's Postfix reads the primary while its own replica is down.
    assert mx1["mail_database_postfix_hosts"] == ["localhost", "127.0.0.1", "10.0.0.2"]
    assert mx1["mail_database_dovecot_hosts"] == ["localhost", "127.0.0.1"]
    assert mx1["postfix_mode"] == "mailbox" and mx1["postfix_content_filter"] is False
    # The primary does not judge by SPF and DMARC what the backup MX relays to it.
    assert mx1["dmarc_ignore_hosts"] == ["127.0.0.1", "::1", "10.0.0.2"]
    assert mx2 == {
        "mail_database_mode": "replica",
        "mail_database_server_id": 2,
        "mail_database_binlog": True,
        "mail_database_primary": "10.0.0.1",
        # The replica answers the primary's Postfix and Dovecot while the
        # primary's server is down: on the network, over TLS, with their
        # accounts; its certificate names its address (and localhost, for
        # its own Postfix).
        "mail_database_bind_address": "*",
        "mail_database_postfix_hosts": ["localhost", "127.0.0.1", "10.0.0.1"],
        "mail_database_dovecot_hosts": ["localhost", "127.0.0.1", "10.0.0.1"],
        "mail_database_tls": True,
        "mail_database_primary_ca_file": "/etc/ssl/certs/ca-certificates.crt",
        "tls_names": ["mx2", "mx2.example.test", "10.0.0.2", "localhost"],
        # Signed by the CA on the primary.
        "tls_ca_host": "mx1",
        "postfix_mode": "backup_relay",
        "postfix_myhostname": "mx2.example.test",
        # The backup reads its own replica, then the primary.
        "postfix_db_hosts": ["localhost", "10.0.0.1"],
        "postfix_db_ca_file": "/etc/ssl/certs/ca-certificates.crt",
        "postfix_relay_to": "[10.0.0.1]:25",
        "backup_mx_primary": "mx1",
        "backup_mx_primary_address": "10.0.0.1",
        "backup_mx_address": "10.0.0.2",
        "backup_mx_mail_root": "/var/vmail",
    }
    zone = hosts["ns1"]["options"]["dns_zones"][0]
    assert sorted(r["value"] for r in zone["records"] if r["type"] == "MX") == \
        ["10 mx2.example.test.", "5 mx1.example.test."]


SHARDED = dict(
    groups=dict(mail_dns=["ns1"], mail_db=["ns1"], mail_filter=["ns1"], mail_smtp=["smtp1", "smtp2"],
                mail_proxy=["proxy1"], mail_webmail=["proxy1"], mail_store=["ms1", "ms2"]),
    hosts=dict(ns1={"ansible_facts": facts("10.0.0.53")}, smtp1={"ansible_facts": facts("10.0.0.21")},
               smtp2={"ansible_facts": facts("10.0.0.22")}, proxy1={"ansible_facts": facts("10.0.0.31", "fd00::31")},
               ms1={"ansible_facts": facts("10.0.0.41")}, ms2={"ansible_facts": facts("10.0.0.42")}))


def test_sharded():
    hosts = wired(**SHARDED)
    ns1, smtp1, proxy1, ms1 = (hosts[h]["options"] for h in ("ns1", "smtp1", "proxy1", "ms1"))
    assert hosts["smtp1"]["roles"] == ["common", "dkim", "dmarc", "tls", "postfix", "firewall"]
    assert hosts["proxy1"]["roles"] == ["common", "tls", "dovecot", "webmail", "firewall"]
    assert hosts["ms1"]["roles"] == ["common", "tls", "nfs_client", "dovecot", "firewall"]
    # The database: read by the SMTP tier (Postfix) and by the proxies and
    # shards (Dovecot); the shards register, and may write moves.
    assert ns1["mail_database_bind_address"] == "*"
    assert ns1["mail_database_postfix_hosts"] == ["localhost", "127.0.0.1", "10.0.0.21", "10.0.0.22"]
    assert ns1["mail_database_dovecot_hosts"] == ["localhost", "127.0.0.1", "10.0.0.41", "10.0.0.42",
                                                  "10.0.0.31", "fd00::31"]
    assert ns1["mail_database_mailbox_hosts"] == [{"name": "ms1", "address": "10.0.0.41"},
                                                  {"name": "ms2", "address": "10.0.0.42"}]
    # The shards write moves with the moves' account only; the provisioning
    # account stays on the database host (the role's default).
    assert ns1["mail_database_mover_hosts"] == ["10.0.0.41", "10.0.0.42"]
    assert "mail_database_admin_hosts" not in ns1
    # Every tier reads it over verified TLS.
    assert ns1["mail_database_tls"] is True and ns1["tls_names"][-1] == "10.0.0.53"
    # One lab CA for all: on the first host with a certificate (no mail_mx
    # here: the first shard).
    assert {hosts[h]["options"]["tls_ca_host"] for h in ("ns1", "smtp1", "smtp2", "proxy1", "ms1", "ms2")} == {"ms1"}
    assert smtp1["postfix_db_ca_file"] == proxy1["dovecot_db_ca_file"] == ms1["dovecot_db_ca_file"] == \
        "/etc/ssl/certs/ca-certificates.crt"
    # The filter takes mail from, and gives it back to, both SMTP hosts.
    assert ns1["content_filter_clients"] == ["10.0.0.21", "10.0.0.22"]
    # The SMTP tier routes to the shards and authenticates at the proxy.
    assert smtp1["postfix_mode"] == "router"
    # Each SMTP host signs submitted mail with its own keys.
    assert smtp1["dkim_domains"] == ["example.test"]
    assert smtp1["postfix_milters"] == ["inet:127.0.0.1:8891", "inet:127.0.0.1:8893"]
    assert smtp1["postfix_db_hosts"] == ["10.0.0.53"]
    assert smtp1["postfix_shard_lmtp_port"] == 24
    assert smtp1["postfix_sasl_path"] == "inet:10.0.0.31:12345"
    assert smtp1["postfix_quota_policy"] == ""
    assert smtp1["postfix_content_filter"] is True and smtp1["postfix_content_filter_host"] == "10.0.0.53"
    assert smtp1["tls_names"] == ["smtp1", "smtp1.example.test", "smtp.example.test"]
    # The proxy: IMAP and POP3 only, SASL and doveadm over TCP.
    assert {k: proxy1[k] for k in ("dovecot_mode", "dovecot_protocols", "dovecot_auth_listen",
                                   "dovecot_doveadm_listen", "dovecot_postfix_local", "dovecot_quota_status")} == {
        # On every address of the host (IPv4 and IPv6).
        "dovecot_mode": "proxy", "dovecot_protocols": ["imap", "pop3"], "dovecot_auth_listen": ["10.0.0.31", "fd00::31"],
        "dovecot_doveadm_listen": ["10.0.0.31", "fd00::31"], "dovecot_postfix_local": False, "dovecot_quota_status": False}
    assert proxy1["tls_names"] == ["proxy1", "proxy1.example.test", "imap.example.test", "pop3.example.test",
                                   "webmail.example.test", "mta-sts.example.test"]
    # The policy names the SMTP tier's name, the MX.
    assert "\r\nmx: smtp.example.test\r\n" in proxy1["webmail_mta_sts_policies"][0]["policy"]
    # Roundcube: the tiers' shared names, which their certificates carry
    # (connecting to the first host of each); its database on the primary
    # over verified TLS, its account from the webmail host only.
    assert (proxy1["webmail_imap_host"], proxy1["webmail_smtp_host"]) == ("imap.example.test", "smtp.example.test")
    assert (proxy1["webmail_imap_address"], proxy1["webmail_smtp_address"]) == ("10.0.0.31", "10.0.0.21")
    assert proxy1["webmail_server_aliases"] == ["proxy1.example.test", "webmail.example.test"]
    assert (proxy1["webmail_db_host"], proxy1["webmail_db_ca_file"]) == ("10.0.0.53", "/etc/ssl/certs/ca-certificates.crt")
    assert ns1["mail_database_roundcube_hosts"] == ["10.0.0.31", "fd00::31"]
    assert hosts["proxy1"]["copies"]["webmail_db_password"] == "mail_database_roundcube_password"
    # A shard: LMTP for the SMTP tier; IMAP and POP3 only for the users
    # pinned to it (proxy_maybe), logins only through the proxy and the
    # other shards (which pass on a login for a user moved here).
    assert {k: ms1[k] for k in ("dovecot_mode", "dovecot_lmtp_listen", "dovecot_lmtp_proxy", "dovecot_login_proxy_maybe",
                                "dovecot_proxy_networks", "dovecot_doveadm_listen", "dovecot_postfix_local")} == {
        "dovecot_mode": "store", "dovecot_lmtp_listen": ["10.0.0.41"], "dovecot_lmtp_proxy": True,
        "dovecot_login_proxy_maybe": True, "dovecot_proxy_networks": ["10.0.0.31/32", "fd00::31/128", "10.0.0.42/32"],
        "dovecot_doveadm_listen": ["10.0.0.41"], "dovecot_postfix_local": False}
    assert hosts["ms2"]["options"]["dovecot_proxy_networks"] == ["10.0.0.31/32", "fd00::31/128", "10.0.0.41/32"]
    assert "dovecot_login_proxy_maybe" not in proxy1
    # Moves run on the shards (mailbox_move reads the database there): the
    # shards install its database client, the proxy does not.
    assert ms1["dovecot_mailbox_moves"] is True and "dovecot_mailbox_moves" not in proxy1
    # doveadm -A on a shard lists its own users: its name in mailbox_host,
    # the one mail_database registers it under.
    assert ms1["dovecot_mailbox_host"] == "ms1" and "dovecot_mailbox_host" not in proxy1
    assert {"name": "ms1", "address": "10.0.0.41"} in ns1["mail_database_mailbox_hosts"]
    # Routing by the database's mailbox host: no cached lookups, on the proxy nor the shards.
    assert proxy1["dovecot_auth_cache_size"] == "0" and ms1["dovecot_auth_cache_size"] == "0"
    zone = ns1["dns_zones"][0]
    by_name = {}
    for r in zone["records"]:
        by_name.setdefault((r["name"], r["type"]), []).append(r["value"])
    assert by_name[("smtp", "A")] == ["10.0.0.21", "10.0.0.22"]
    assert by_name[("imap", "A")] == ["10.0.0.31"] and by_name[("pop3", "A")] == ["10.0.0.31"]
    assert by_name[("@", "MX")] == ["5 smtp.example.test."]


def test_a_shard_on_the_database_host_moves_over_loopback():
    groups = dict(SHARDED["groups"], mail_store=["ms1", "ns1"])
    ns1 = wired(groups, SHARDED["hosts"])["ns1"]["options"]
    assert ns1["mail_database_mover_hosts"] == ["10.0.0.41", "localhost", "127.0.0.1"]


def test_the_inventory_wins_over_the_moves_account_hosts():
    hosts = dict(SHARDED["hosts"], ns1=dict(SHARDED["hosts"]["ns1"], mail_database_mover_hosts=["10.0.0.%"]))
    assert "mail_database_mover_hosts" not in wired(SHARDED["groups"], hosts)["ns1"]["options"]


def test_sharded_shards_with_different_lmtp_ports_are_refused():
    hosts = dict(SHARDED["hosts"], ms2=dict(SHARDED["hosts"]["ms2"], dovecot_lmtp_port=2424))
    g, hv = inventory(SHARDED["groups"], hosts, dict(PASSWORDS, mailstack_domain="example.test"))
    errors = mail_wiring(g, hv)["errors"]
    assert any("ms1, ms2 take LMTP on different ports (24, 2424)" in e for e in errors), errors


def test_the_inventory_wins_and_feeds_the_other_hosts():
    hosts = dict(SINGLE_WITH_FILTER_HOST["hosts"])
    hosts["mx1"] = dict(hosts["mx1"], postfix_content_filter_concurrency=3, postfix_reinject_port=10035,
                        dovecot_quota_status_port=12999, dovecot_mail_root="/srv/mail")
    hosts["filter1"] = dict(hosts["filter1"], content_filter_port=10030, content_filter_clients=["10.0.0.1"])
    wiring = wired(SINGLE_WITH_FILTER_HOST["groups"], hosts)
    mx1, filter1 = wiring["mx1"]["options"], wiring["filter1"]["options"]
    # The inventory's own values are never in the wiring...
    assert "postfix_content_filter_concurrency" not in mx1
    assert "content_filter_clients" not in filter1
    # ...and the wiring reads them where other hosts depend on them.
    assert mx1["postfix_content_filter_port"] == 10030
    assert mx1["postfix_quota_policy"] == "inet:127.0.0.1:12999"
    assert filter1["content_filter_reinject_port"] == 10035


def test_the_inventory_wins_over_a_secret_too():
    hosts = dict(SINGLE_WITH_FILTER_HOST["hosts"])
    hosts["mx1"] = dict(hosts["mx1"], postfix_db_password="own")
    assert wired(SINGLE_WITH_FILTER_HOST["groups"], hosts)["mx1"]["copies"] == {
        "dovecot_db_password": "mail_database_dovecot_password",
        "webmail_db_password": "mail_database_roundcube_password"}


def test_values_a_previous_wiring_set_are_not_the_inventorys():
    hosts = dict(SINGLE_WITH_FILTER_HOST["hosts"])
    hosts["mx1"] = dict(hosts["mx1"], postfix_mode="mailbox", mailstack__wired_keys=["postfix_mode"])
    assert wired(SINGLE_WITH_FILTER_HOST["groups"], hosts)["mx1"]["options"]["postfix_mode"] == "mailbox"


def test_a_filter_host_reached_over_ipv6():
    hosts = dict(SINGLE_WITH_FILTER_HOST["hosts"])
    hosts["mx1"] = {"ansible_facts": facts("10.0.0.1", "fd00::1")}
    hosts["filter1"] = {"ansible_facts": facts("10.0.0.9", "fd00::9"), "mailstack_address": "fd00::9"}
    wiring = wired(SINGLE_WITH_FILTER_HOST["groups"], hosts)
    mx1, filter1 = wiring["mx1"]["options"], wiring["filter1"]["options"]
    assert mx1["postfix_content_filter_host"] == "fd00::9"
    assert mx1["postfix_reinject_clients"] == ["fd00::9/128"]
    assert filter1["content_filter_clients"] == ["10.0.0.1", "fd00::1"]
    zone = wiring["ns1"]["options"]["dns_zones"][0]
    assert {"name": "filter1", "type": "AAAA", "value": "fd00::9"} in zone["records"]


@pytest.mark.parametrize("host, option, value, message", [
    ("mx1", "mailstack_address", "10.0.0.300", "mx1: mailstack_address: '10.0.0.300' is not an IP address"),
    ("filter1", "mailstack_address", "filter1.example.test",
     "filter1: mailstack_address: 'filter1.example.test' is not an IP address"),
    ("mx1", "postfix_reinject_clients", ["10.0.0.9/33"],
     "mx1: postfix_reinject_clients: '10.0.0.9/33' is not an IP address or CIDR network"),
    ("mx1", "postfix_mynetworks", ["127.0.0.0/8", "10.1"],
     "mx1: postfix_mynetworks: '10.1' is not an IP address or CIDR network"),
    ("filter1", "content_filter_clients", "10.0.0.1",
     "filter1: content_filter_clients must be a list of networks, not '10.0.0.1'"),
    ("ns1", "common_resolv_nameservers", ["fd00::zz"],
     "ns1: common_resolv_nameservers: 'fd00::zz' is not an IP address"),
], ids=["bad-octet", "name", "bad-prefix", "short-address", "not-a-list", "bad-ipv6"])
def test_a_malformed_address_is_refused_naming_host_and_option(host, option, value, message):
    # Each host checks its own options (site.yml's pre-flight, with the
    # values resolved on that host); mailstack_address, which every host
    # reads, is checked by the wiring too.
    assert mail_address_errors({option: value, "postfix_db_hosts": ["not checked"]}, host) == [message]
    if option == "mailstack_address":
        hosts = dict(SINGLE_WITH_FILTER_HOST["hosts"])
        hosts[host] = dict(hosts[host], **{option: value})
        g, hv = inventory(SINGLE_WITH_FILTER_HOST["groups"], hosts, PASSWORDS)
        assert message in mail_wiring(g, hv)["errors"]


def test_good_addresses_and_unset_options_pass():
    assert mail_address_errors({"mailstack_address": "fd00::9", "postfix_mynetworks": ["127.0.0.0/8", "::1/128",
                                "[::1]/128", "10.0.0.1"], "content_filter_clients": ["10.0.0.1", "fd00::1"],
                                "common_resolv_nameservers": None}, "mx1") == []


def test_a_host_without_an_address_is_named():
    hosts = dict(SINGLE_WITH_FILTER_HOST["hosts"], filter1={})
    g, hv = inventory(SINGLE_WITH_FILTER_HOST["groups"], hosts, PASSWORDS)
    errors = mail_wiring(g, hv)["errors"]
    assert errors and all(e.startswith("filter1: no address to reach it at") for e in errors), errors


def test_mailstack_address_needs_no_facts():
    # --limit: the hosts left out may have no facts; their mailstack_address
    # is enough.
    hosts = dict(mx1={"ansible_facts": facts("10.0.0.1")}, filter1={"mailstack_address": "192.0.2.9"})
    o = wired(dict(mail_mx=["mx1"], mail_store=["mx1"], mail_db=["mx1"], mail_filter=["filter1"]),
              hosts)["mx1"]["options"]
    assert o["postfix_content_filter_host"] == "192.0.2.9"
    # No facts: the filter host's cores are unknown; one is assumed (two children).
    assert o["postfix_content_filter_concurrency"] == 2


def test_mail_servers_with_different_reinjection_ports_are_refused():
    # Not a built topology yet with two filtering MX hosts; the rule is the
    # wiring's own, checked on its function.
    from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.inventory import Inventory as _Inventory
    from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.wire import wire_host as _wire_host
    from ansible_collections.mailops.mailstack.plugins.plugin_utils.topology import decide_topology as mail_topology
    hosts = dict(a={"ansible_facts": facts("10.0.0.1")},
                 b={"postfix_reinject_port": 10026, "ansible_facts": facts("10.0.0.2")},
                 f={"ansible_facts": facts("10.0.0.9")})
    g, hv = inventory(dict(mail_mx=["a", "b"], mail_store=["a", "b"], mail_filter=["f"], mail_db=["a"]), hosts)
    inv = _Inventory(hv)
    _roles, o = _wire_host("f", mail_topology(g)["groups"], "nfs_shared", inv)
    assert o["content_filter_clients"] == ["10.0.0.1", "10.0.0.2"]
    assert "content_filter_reinject_port" not in o
    assert inv.errors == ["f: the mail servers a, b listen for filtered mail on different ports (10025, 10026): "
                          "the filter sends it back to one port, so set one postfix_reinject_port for all"]


def test_an_invalid_topology_is_not_wired():
    g, hv = inventory(dict(mail_mx=["mx1"], mail_store=["mx1"], mail_nfs=["nfs1"], mail_db=["db1"]), {})
    result = mail_wiring(g, hv)
    assert result["hosts"] == {} and "shared storage serves two or more" in result["errors"][0]


NFS_SHARED = dict(
    groups=dict(mail_dns=["ns1"], mail_db=["ns1"], mail_nfs=["nfs1"], mail_mx=["ms1", "ms2"],
                mail_store=["ms1", "ms2"]),
    hosts=dict(ns1={"ansible_facts": facts("10.0.0.53")}, nfs1={"ansible_facts": facts("10.0.0.201")},
               ms1={"ansible_facts": facts("10.0.0.202")}, ms2={"ansible_facts": facts("10.0.0.203", "fd00::203")}))


def test_nfs_shared():
    hosts = wired(**NFS_SHARED)
    ns1, nfs1, ms1, ms2 = (hosts[h]["options"] for h in ("ns1", "nfs1", "ms1", "ms2"))
    assert hosts["nfs1"]["roles"] == ["common", "nfs_server", "firewall"]
    assert hosts["ms1"]["roles"] == ["common", "dkim", "dmarc", "tls", "nfs_client", "postfix", "dovecot", "firewall"]
    # The store: exported to both servers (every address they may come from),
    # owned by the servers' vmail id, mounted by each at the same path.
    assert nfs1["nfs_server_clients"] == ["10.0.0.202", "10.0.0.203", "fd00::203"]
    assert (nfs1["nfs_server_vmail_uid"], nfs1["nfs_server_vmail_user"]) == (5000, "vmail")
    assert ms1["nfs_client_mounts"] == [{"src": "10.0.0.201:/srv/mailstore", "path": "/srv/mailstore"}]
    assert ms1["nfs_client_required_by"] == ["dovecot.service", "postfix@-.service"]
    # The servers register as mailbox hosts: each user is pinned to one.
    assert ns1["mail_database_mailbox_hosts"] == [{"name": "ms1", "address": "10.0.0.202"},
                                                  {"name": "ms2", "address": "10.0.0.203"}]
    # No moves here (re-pinning runs on the database host): no write account for the servers.
    assert "mail_database_mover_hosts" not in ns1 and "mail_database_admin_hosts" not in ns1
    # Postfix routes each recipient to the LMTP of the pinned server; no
    # quota-status on NFS (Dovecot's NFS page).
    assert (ms1["postfix_mode"], ms1["postfix_shard_lmtp_port"], ms1["postfix_quota_policy"]) == ("router", 24, "")
    assert ms1["postfix_db_hosts"] == ["10.0.0.53"]
    # Dovecot: the mail root on the store, NFS settings, pinned logins and
    # deliveries, the other server trusted to proxy.
    assert {k: ms1[k] for k in ("dovecot_mode", "dovecot_mail_root", "dovecot_shared_storage",
                                "dovecot_auth_cache_size", "dovecot_lmtp_listen", "dovecot_lmtp_proxy",
                                "dovecot_login_proxy_maybe", "dovecot_trusted_networks", "dovecot_quota_status",
                                "dovecot_postfix_local")} == {
        "dovecot_mode": "store", "dovecot_mail_root": "/srv/mailstore/vmail", "dovecot_shared_storage": True,
        "dovecot_auth_cache_size": "0", "dovecot_lmtp_listen": ["10.0.0.202"], "dovecot_lmtp_proxy": True,
        "dovecot_login_proxy_maybe": True, "dovecot_trusted_networks": ["10.0.0.203/32", "fd00::203/128"],
        "dovecot_quota_status": False, "dovecot_postfix_local": True}
    # Every server of the NFS store holds every user: doveadm -A lists them all.
    assert "dovecot_proxy_networks" not in ms1 and "dovecot_mailbox_host" not in ms1
    assert ms2["dovecot_trusted_networks"] == ["10.0.0.202/32"]
    # LMTP on every address of the server, IPv6 too.
    assert ms2["dovecot_lmtp_listen"] == ["10.0.0.203", "fd00::203"]
    # One name for both servers: in their certificates, the MX, round robin.
    assert ms1["tls_names"] == ["ms1", "ms1.example.test", "mail.example.test"]
    by_name = {}
    for r in ns1["dns_zones"][0]["records"]:
        by_name.setdefault((r["name"], r["type"]), []).append(r["value"])
    assert by_name[("mail", "A")] == ["10.0.0.202", "10.0.0.203"]
    assert by_name[("@", "MX")] == ["5 mail.example.test."]


def test_nfs_shared_inventory_wins_and_feeds_the_others():
    hosts = dict(NFS_SHARED["hosts"])
    hosts["nfs1"] = dict(hosts["nfs1"], nfs_server_export="/export/mail", nfs_server_mail_dir="boxes")
    hosts["ms2"] = dict(hosts["ms2"], dovecot_mail_root="/export/mail/boxes")
    wiring = wired(NFS_SHARED["groups"], hosts)
    assert wiring["ms1"]["options"]["nfs_client_mounts"] == [{"src": "10.0.0.201:/export/mail",
                                                             "path": "/export/mail"}]
    assert wiring["ms1"]["options"]["dovecot_mail_root"] == "/export/mail/boxes"
    assert "dovecot_mail_root" not in wiring["ms2"]["options"]
    assert "nfs_server_export" not in wiring["nfs1"]["options"]


def test_nfs_shared_on_an_iscsi_target():
    groups = dict(NFS_SHARED["groups"], mail_san=["ns1"])
    hosts = dict(NFS_SHARED["hosts"])
    hosts["nfs1"] = dict(hosts["nfs1"], ansible_facts=facts("10.0.0.201", "fd00::201"))
    wiring = wired(groups, hosts, {"iscsi_target_chap_password": "chap-secret-1234"})
    ns1, nfs1 = wiring["ns1"], wiring["nfs1"]
    assert ns1["roles"][ns1["roles"].index("mail_database") + 1] == "iscsi_target"
    # Only the NFS server may log in, from any address it has.
    assert ns1["options"]["iscsi_target_initiators"] == ["10.0.0.201", "fd00::201"]
    assert nfs1["options"]["nfs_server_store"] == "iscsi"
    assert nfs1["options"]["nfs_server_iscsi_portal"] == "10.0.0.53"
    assert nfs1["options"]["nfs_server_iscsi_target"] == "iqn.2026-12.local.mailstack:mailstore"
    assert nfs1["options"]["nfs_server_iscsi_chap_user"] == "mailstore"
    # The secret is named, never read: site.yml copies it without logging.
    assert nfs1["copies"] == {"nfs_server_iscsi_chap_password": "iscsi_target_chap_password"}
    assert "chap-secret-1234" not in repr(wiring)


def test_nfs_shared_on_an_iscsi_target_the_inventory_wins():
    groups = dict(NFS_SHARED["groups"], mail_san=["ns1"])
    hosts = dict(NFS_SHARED["hosts"])
    hosts["ns1"] = dict(hosts["ns1"], iscsi_target_iqn="iqn.2001-04.test.example:store",
                        iscsi_target_chap_user="nfs1")
    hosts["nfs1"] = dict(hosts["nfs1"], nfs_server_store="directory")
    wiring = wired(groups, hosts)
    assert "nfs_server_store" not in wiring["nfs1"]["options"]
    assert wiring["nfs1"]["options"]["nfs_server_iscsi_target"] == "iqn.2001-04.test.example:store"
    assert wiring["nfs1"]["options"]["nfs_server_iscsi_chap_user"] == "nfs1"
    # Without the secret in the inventory there is nothing to copy.
    assert wiring["nfs1"]["copies"] == {}


def test_no_iscsi_without_a_target_host():
    wiring = wired(**NFS_SHARED)
    assert not [k for k in wiring["nfs1"]["options"] if "iscsi" in k or k == "nfs_server_store"]


@pytest.mark.parametrize("change, error", [
    (dict(ms2={"dovecot_vmail_uid": 6000}),
     "nfs1: the mail servers disagree on dovecot_vmail_uid (ms1: 5000, ms2: 6000): the files of the shared store "
     "carry one owner, set it once"),
    (dict(ms1={"dovecot_mail_root": "/var/vmail"}),
     "ms1: dovecot_mail_root /var/vmail is outside the NFS store /srv/mailstore (mounted from nfs1): every server of "
     "the store must keep its mail on it"),
    (dict(ms1={"tls_source": "acme", "tls_acme_challenge": "http-01"}),
     "ms1: tls_source=acme with tls_acme_challenge=http-01 cannot certify mail.example.test, which ms1, ms2 share: the "
     "ACME server checks the name at one of their addresses; use tls_acme_challenge: dns-01 (with "
     "tls_acme_tsig_secret) or provided certificates"),
])
def test_nfs_shared_refuses(change, error):
    hosts = dict(NFS_SHARED["hosts"])
    for host, values in change.items():
        hosts[host] = dict(hosts[host], **values)
    g, hv = inventory(NFS_SHARED["groups"], hosts, dict(PASSWORDS, mailstack_domain="example.test"))
    errors = mail_wiring(g, hv)["errors"]
    assert error in errors, errors


def test_role_defaults_come_from_the_roles():
    assert role_default("content_filter_port") == 10024
    assert role_default("postfix_reinject_port") == 10025
    assert role_default("dovecot_mail_root") == "/var/vmail"


def test_a_wrong_value_the_wiring_reads_is_named():
    hosts = dict(SINGLE_WITH_FILTER_HOST["hosts"])
    hosts["filter1"] = dict(hosts["filter1"], content_filter_children="many")
    g, hv = inventory(SINGLE_WITH_FILTER_HOST["groups"], hosts, PASSWORDS)
    assert mail_wiring(g, hv)["errors"] == ["filter1: content_filter_children: 'many' is not an integer"]


def test_the_zone_publishes_the_dmarc_policy_the_inventory_chooses():
    groups, hv = SINGLE_WITH_FILTER_HOST["groups"], SINGLE_WITH_FILTER_HOST["hosts"]
    zone = wired(groups, hv, {"mailstack_dmarc_policy": "reject"})["ns1"]["options"]["dns_zones"][0]
    assert {"name": "_dmarc", "type": "TXT", "value": '"v=DMARC1; p=reject; rua=mailto:postmaster@example.test"'} \
        in zone["records"]


def test_a_wrong_dmarc_policy_or_mismatched_authserv_ids_are_refused():
    groups, hv = SINGLE_WITH_FILTER_HOST["groups"], dict(SINGLE_WITH_FILTER_HOST["hosts"])
    hv["mx1"] = dict(hv["mx1"], dkim_authserv_id="mx9")
    errors = mail_wiring(*inventory(groups, hv, dict(PASSWORDS, mailstack_domain="example.test",
                                                     mailstack_dmarc_policy="drop")))["errors"]
    assert "mailstack_dmarc_policy must be one of none, quarantine, reject, not 'drop'" in errors
    assert any(e.startswith("mx1: dkim_authserv_id (mx9) and dmarc_authserv_id (mx1.example.test) differ")
               for e in errors), errors


def _mta_sts(zone):
    return [r for r in zone["records"] if r["name"] in ("mta-sts", "_mta-sts")]


def test_the_mta_sts_id_changes_when_and_only_when_the_policy_does():
    groups, hv = SINGLE_WITH_FILTER_HOST["groups"], dict(SINGLE_WITH_FILTER_HOST["hosts"])
    first = wired(groups, hv)
    # Another run, the mail server at another address: the same policy, the
    # same id (only the record pointing at the web server follows).
    hv2 = dict(hv, mx1={"ansible_facts": facts("10.0.0.7")})
    again = _mta_sts(wired(groups, hv2)["ns1"]["options"]["dns_zones"][0])
    assert [r for r in again if r["name"] == "_mta-sts"] == \
        [r for r in _mta_sts(first["ns1"]["options"]["dns_zones"][0]) if r["name"] == "_mta-sts"]
    assert {"name": "mta-sts", "type": "A", "value": "10.0.0.7"} in again
    # Enforcing changes the policy, and so the id the zone publishes.
    enforced = wired(groups, hv, {"mailstack_mta_sts_mode": "enforce", "mailstack_mta_sts_max_age": 86400})
    policy = enforced["mx1"]["options"]["webmail_mta_sts_policies"][0]["policy"]
    assert policy == "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\nmax_age: 86400\r\n"
    ids = [r["value"] for z in (first, enforced) for r in _mta_sts(z["ns1"]["options"]["dns_zones"][0])
           if r["name"] == "_mta-sts"]
    assert len(set(ids)) == 2
    assert ids[1] == '"v=STSv1; id=%s"' % hashlib.sha256(policy.encode()).hexdigest()[:32]
    # A backup MX is in the policy too: senders may deliver to it.
    backup = wired(dict(groups, mail_backup_mx=["mx2"], mail_db_replica=["mx2"]),
                   dict(hv, mx2={"ansible_facts": facts("10.0.0.2")}))
    assert "mx: mx1.example.test\r\nmx: mx2.example.test\r\n" in backup["mx1"]["options"]["webmail_mta_sts_policies"][0]["policy"]


def test_mta_sts_off_publishes_nothing_and_tls_reports_may_be_turned_off():
    groups, hv = SINGLE_WITH_FILTER_HOST["groups"], SINGLE_WITH_FILTER_HOST["hosts"]
    hosts = wired(groups, hv, {"mailstack_mta_sts_mode": "off", "mailstack_tls_rpt_rua": "none"})
    zone = hosts["ns1"]["options"]["dns_zones"][0]
    assert _mta_sts(zone) == [] and not [r for r in zone["records"] if r["name"] == "_smtp._tls"]
    assert "webmail_mta_sts_policies" not in hosts["mx1"]["options"]
    assert hosts["mx1"]["options"]["tls_names"] == ["mx1", "mx1.example.test", "webmail.example.test"]


def test_mta_sts_without_a_web_host_or_with_wrong_values_is_refused():
    groups = {k: v for k, v in SINGLE_WITH_FILTER_HOST["groups"].items() if k != "mail_webmail"}
    hv = SINGLE_WITH_FILTER_HOST["hosts"]
    # Left at its default, or at 'testing' as an AWX survey sends it,
    # nothing is published without a web server.
    assert _mta_sts(wired(groups, hv)["ns1"]["options"]["dns_zones"][0]) == []
    assert _mta_sts(wired(groups, hv, {"mailstack_mta_sts_mode": "testing"})["ns1"]["options"]["dns_zones"][0]) == []
    common = dict(PASSWORDS, mailstack_domain="example.test", mailstack_mta_sts_mode="enforce")
    errors = mail_wiring(*inventory(groups, hv, common))["errors"]
    assert errors == ["ns1: mailstack_mta_sts_mode is 'enforce' but the inventory has no 'mail_webmail' host to "
                      "serve the policy at https://mta-sts.example.test/ (set it to 'off', or add one)"]
    groups = SINGLE_WITH_FILTER_HOST["groups"]
    common = dict(PASSWORDS, mailstack_domain="example.test", mailstack_mta_sts_mode="strict")
    assert "mailstack_mta_sts_mode must be one of off, none, testing, enforce, not 'strict'" in \
        mail_wiring(*inventory(groups, hv, common))["errors"]
    for bad in (-1, True, 86400.5, "a week"):
        common = dict(PASSWORDS, mailstack_domain="example.test", mailstack_mta_sts_max_age=bad)
        assert any(e.startswith("ns1: mailstack_mta_sts_max_age: mail_mta_sts_policy: max_age must be a whole number")
                   for e in mail_wiring(*inventory(groups, hv, common))["errors"]), bad


def test_a_site_setting_that_differs_between_hosts_is_refused():
    """The policy the DNS host publishes and the one the webmail host serves
    come from one setting; so does the host that keeps the lab CA."""
    groups, hv = SINGLE_WITH_FILTER_HOST["groups"], dict(SINGLE_WITH_FILTER_HOST["hosts"])
    hv["mx1"] = dict(hv["mx1"], mailstack_mta_sts_mode="enforce", tls_ca_host="mx1")
    errors = mail_wiring(*inventory(groups, hv, dict(PASSWORDS, mailstack_domain="example.test")))["errors"]
    assert errors == [
        "mailstack_mta_sts_mode differs between hosts (filter1: unset, mx1: 'enforce', ns1: unset): it is one "
        "setting of the whole site, set it once (group_vars/all)",
        "tls_ca_host differs between hosts (filter1: unset, mx1: 'mx1', ns1: unset): it is one setting of the "
        "whole site, set it once (group_vars/all)"]


def test_tls_reports_go_where_the_inventory_says_and_a_wrong_address_is_named():
    groups, hv = SINGLE_WITH_FILTER_HOST["groups"], SINGLE_WITH_FILTER_HOST["hosts"]
    zone = wired(groups, hv, {"mailstack_tls_rpt_rua": "mailto:tls@example.test,https://r.example.test/tls"})[
        "ns1"]["options"]["dns_zones"][0]
    assert {"name": "_smtp._tls", "type": "TXT",
            "value": '"v=TLSRPTv1; rua=mailto:tls@example.test,https://r.example.test/tls"'} in zone["records"]
    for bad in ("tls@example.test", 'mailto:a"b@example.test', "mailto:a@example.test; x"):
        common = dict(PASSWORDS, mailstack_domain="example.test", mailstack_tls_rpt_rua=bad)
        assert mail_wiring(*inventory(groups, hv, common))["errors"] == [
            "ns1: mailstack_tls_rpt_rua must be 'none' or mailto: and https: URIs separated by commas, not %r" % bad]


# What each host's roles require set (checked by wire.yml before any host
# changes): (option, rule) per host, in play order. The wiring names the
# options; it never reads their values.
DOMAIN = ("mailstack_domain", "non_empty")
DB_ACCOUNTS = [("mail_database_postfix_password", "non_empty"), ("mail_database_dovecot_password", "non_empty")]
PRIMARY = [("mail_database_admin_password", "non_empty")] + DB_ACCOUNTS
SIGNATURES = ("content_filter_clamav_signature_files", "non_empty")
POSTFIX_DB, DOVECOT_DB = ("postfix_db_password", "non_empty"), ("dovecot_db_password", "non_empty")
DOVEADM = ("dovecot_doveadm_password", "non_empty")
DES_KEY = ("webmail_des_key", "length 24")
REPLICATION = ("mail_database_replication_password", "non_empty")
ROUNDCUBE, WEBMAIL_DB = ("mail_database_roundcube_password", "non_empty"), ("webmail_db_password", "non_empty")
MOVER = ("mail_database_mover_password", "non_empty")


def required(hosts):
    return dict((h, [(r["option"], r["rule"]) for r in wired_host["required"]]) for h, wired_host in hosts.items())


@pytest.mark.parametrize("topology, expected", [
    (SINGLE_WITH_FILTER_HOST, {"ns1": [DOMAIN],
                               "mx1": [DOMAIN] + PRIMARY + [ROUNDCUBE, POSTFIX_DB, DOVECOT_DB, DES_KEY, WEBMAIL_DB],
                               "filter1": [SIGNATURES], "outside1": []}),
    # The primary has a replica: both need the replication password.
    (BACKUP, {"ns1": [DOMAIN], "mx1": [DOMAIN] + PRIMARY + [REPLICATION, POSTFIX_DB, DOVECOT_DB],
              "mx2": DB_ACCOUNTS + [REPLICATION, POSTFIX_DB]}),
    # doveadm listens on every Dovecot host (moves, kicks).
    # The moves' account: made on the primary, logged in with on the shards.
    (SHARDED, {"ns1": [DOMAIN] + PRIMARY + [ROUNDCUBE, MOVER, SIGNATURES], "smtp1": [DOMAIN, POSTFIX_DB],
               "smtp2": [DOMAIN, POSTFIX_DB], "proxy1": [DOVECOT_DB, DOVEADM, DES_KEY, WEBMAIL_DB],
               "ms1": [DOVECOT_DB, DOVEADM, MOVER], "ms2": [DOVECOT_DB, DOVEADM, MOVER]}),
    (NFS_SHARED, {"ns1": [DOMAIN] + PRIMARY, "nfs1": [], "ms1": [DOMAIN, POSTFIX_DB, DOVECOT_DB],
                  "ms2": [DOMAIN, POSTFIX_DB, DOVECOT_DB]}),
], ids=["single", "backup_mx", "sharded", "nfs_shared"])
def test_what_each_host_requires(topology, expected):
    assert required(wired(**topology)) == expected


def test_requirements_follow_the_inventory():
    """The iSCSI variant needs the CHAP secret on the target and the NFS
    server; provided certificates need their PEM; a private mirror stands in
    for signature files; doveadm set to listen needs its secret anywhere."""
    groups = dict(NFS_SHARED["groups"], mail_san=["san1"], mail_filter=["ns1"])
    hosts = dict(NFS_SHARED["hosts"], san1={"ansible_facts": facts("10.0.0.210")},
                 ns1=dict(NFS_SHARED["hosts"]["ns1"], content_filter_clamav_private_mirror="https://clamav.internal"),
                 ms1=dict(NFS_SHARED["hosts"]["ms1"], tls_source="provided", dovecot_doveadm_listen=["10.0.0.202"]))
    result = required(wired(groups, hosts))
    assert result["san1"] == [("iscsi_target_chap_password", "chap")]
    assert result["nfs1"] == [("nfs_server_iscsi_chap_password", "chap")]
    assert result["ns1"] == [DOMAIN] + PRIMARY
    assert result["ms1"] == [DOMAIN, ("tls_certificate", "pem certificate"), ("tls_private_key", "pem private key"),
                             POSTFIX_DB, DOVECOT_DB, DOVEADM]
    assert result["ms2"] == [DOMAIN, POSTFIX_DB, DOVECOT_DB]


def test_a_shard_the_inventory_takes_out_of_moves_needs_no_moves_password():
    hosts = dict(SHARDED["hosts"], ms2=dict(SHARDED["hosts"]["ms2"], dovecot_mailbox_moves=False))
    result = required(wired(SHARDED["groups"], hosts))
    assert result["ms1"] == [DOVECOT_DB, DOVEADM, MOVER] and result["ms2"] == [DOVECOT_DB, DOVEADM]


def test_a_requirement_says_why_and_never_holds_a_value():
    groups, hv = inventory(SINGLE_WITH_FILTER_HOST["groups"], SINGLE_WITH_FILTER_HOST["hosts"],
                           dict(PASSWORDS, mailstack_domain="example.test", webmail_des_key="S3CRET-des-key-24-chars!"))
    hosts = mail_wiring(groups, hv)["hosts"]
    for name, host in hosts.items():
        for requirement in host["required"]:
            assert sorted(requirement) == ["option", "rule", "why"] and requirement["why"], (name, requirement)
    assert "S3CRET" not in repr(hosts) and "'pf'" not in repr(hosts)


@pytest.mark.parametrize("rule, good, bad", [
    ("non_empty", ["x", ["a.cvd"], 5], ["", [], None]),
    ("length 24", ["a" * 24], ["a" * 23, "a" * 25, ""]),
    ("chap", ["abcdefghijkl", "a.b_c~d+e=f@g%h^i,j:k/l-m"], ["short", "a" * 65, "has spaces in it", "quote'quote'"]),
    ("pem certificate", ["-----BEGIN CERTIFICATE-----\nMII\n"], ["", "MII"]),
    ("pem private key", ["-----BEGIN PRIVATE KEY-----\n", "-----BEGIN EC PRIVATE KEY-----\n"], ["", "key"]),
])
def test_rules(rule, good, bad):
    from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.role import RULES, rule_holds
    assert rule in RULES
    assert all(rule_holds(rule, value) for value in good)
    assert not any(rule_holds(rule, value) for value in bad)


# wire.yml checks each required option with the filter: the same rules, and
# an unknown rule is an error, not a pass.
def test_the_rule_filter_is_rule_holds():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.mailops.mailstack.plugins.filter.wiring import FilterModule
    holds = FilterModule().filters()["mail_rule_holds"]
    assert holds("a" * 24, "length 24") and not holds("a" * 23, "length 24")
    with pytest.raises(AnsibleFilterError, match="unknown rule 'length 25'"):
        holds("a" * 25, "length 25")


# An inventory may name its hosts by their FQDN (smtp1.example.test): the
# wiring is then the short-named inventory's with each host's name replaced,
# the zone the same (names relative to the domain), no name doubled.
def _fqdn_named(topology, domain="example.test"):
    names = dict((h, "%s.%s" % (h, domain)) for h in topology["hosts"])
    groups = dict((g, [names[h] for h in members]) for g, members in topology["groups"].items())
    hosts = dict((names[h], hv) for h, hv in topology["hosts"].items())
    return names, groups, hosts


def _renamed(value, names):
    if isinstance(value, dict):
        return dict((names.get(k, k), _renamed(v, names)) for k, v in value.items())
    if isinstance(value, list):
        renamed = []
        for item in (_renamed(v, names) for v in value):
            if item not in renamed:
                renamed.append(item)
        return renamed
    return names.get(value, value) if isinstance(value, str) else value


@pytest.mark.parametrize("topology", [SINGLE_WITH_FILTER_HOST, BACKUP, SHARDED, NFS_SHARED],
                         ids=["single", "backup_mx", "sharded", "nfs_shared"])
def test_hosts_named_by_their_fqdn(topology):
    short = wired(**topology)
    names, groups, hosts = _fqdn_named(topology)
    fqdn = wired(groups, hosts)
    assert "example.test.example.test" not in repr(fqdn)
    zones = [dict((h, result[h]["options"].pop("dns_zones", None)) for h in result) for result in (short, fqdn)]
    # The zone is the same: host records by their label, MX and NS by FQDN.
    assert zones[1] == dict((names[h], zone) for h, zone in zones[0].items())
    for result in (short, fqdn):
        for name, host in result.items():
            # A certificate of one name: the role's default, the inventory name.
            if "tls" in host["roles"]:
                host["options"].setdefault("tls_names", [name])
            # Why an option is required names hosts in prose.
            host["required"] = [(r["option"], r["rule"]) for r in host["required"]]
    assert fqdn == _renamed(short, names)


def test_an_fqdn_named_host_mails_under_its_name():
    names, groups, hosts = _fqdn_named(SHARDED)
    result = wired(groups, hosts)
    smtp1, ns1 = result["smtp1.example.test"]["options"], result["ns1.example.test"]["options"]
    assert smtp1["postfix_myhostname"] == smtp1["dkim_authserv_id"] == "smtp1.example.test"
    assert smtp1["tls_names"] == ["smtp1.example.test", "smtp.example.test"]
    zone = ns1["dns_zones"][0]
    assert {"name": "smtp1", "type": "A", "value": "10.0.0.21"} in zone["records"]
    assert zone["nameservers"] == ["ns1.example.test."]


def test_an_fqdn_deeper_in_the_domain_gets_its_label_in_the_zone():
    groups = dict(SINGLE_WITH_FILTER_HOST["groups"], mail_mx=["mx1.eu.example.test"],
                  mail_store=["mx1.eu.example.test"], mail_db=["mx1.eu.example.test"],
                  mail_webmail=["mx1.eu.example.test"])
    hosts = dict(SINGLE_WITH_FILTER_HOST["hosts"])
    hosts["mx1.eu.example.test"] = hosts.pop("mx1")
    result = wired(groups, hosts)
    records = result["ns1"]["options"]["dns_zones"][0]["records"]
    assert {"name": "mx1.eu", "type": "A", "value": "10.0.0.1"} in records
    assert {"name": "@", "type": "MX", "value": "5 mx1.eu.example.test."} in records
    assert result["mx1.eu.example.test"]["options"]["postfix_myhostname"] == "mx1.eu.example.test"


@pytest.mark.parametrize("name", ["mx1.example.org", "192.0.2.10", "mx1.example.test.org"])
def test_a_dotted_name_outside_the_mail_domain_is_refused(name):
    groups = dict(SINGLE_WITH_FILTER_HOST["groups"], mail_mx=[name], mail_store=[name], mail_db=[name],
                  mail_webmail=[name])
    hosts = dict(SINGLE_WITH_FILTER_HOST["hosts"])
    hosts[name] = hosts.pop("mx1")
    g, hv = inventory(groups, hosts, dict(PASSWORDS, mailstack_domain="example.test"))
    errors = mail_wiring(g, hv)["errors"]
    short = name.split(".")[0]
    assert ("%s: the inventory name has dots but is not a name under the mail domain example.test "
            "(mailstack_domain), so its mail name would be %s.example.test: name the host %s or %s.example.test "
            "and reach it with ansible_host" % (name, name, short, short)) in errors, errors


def test_a_dotted_name_without_a_mail_domain_is_left_alone():
    g, hv = inventory(dict(mail_mx=["mx1.example.org"], mail_store=["mx1.example.org"], mail_db=["mx1.example.org"]),
                      {"mx1.example.org": {"ansible_facts": facts("10.0.0.1")}}, dict(PASSWORDS))
    result = mail_wiring(g, hv)
    assert result["errors"] == []
    assert "postfix_myhostname" not in result["hosts"]["mx1.example.org"]["options"]


def _with(topology, groups=None, hosts=None):
    """topology (a table above) with groups and host variables added."""
    g = dict(topology["groups"], **(groups or {}))
    h = dict(topology["hosts"])
    for name, values in (hosts or {}).items():
        h[name] = dict(h.get(name, {}), **values)
    return dict(groups=g, hosts=h)


def _db_lists(hosts):
    """{host: (postfix_db_hosts, dovecot_db_hosts)} of the hosts that read the database."""
    return dict((name, (h["options"].get("postfix_db_hosts"), h["options"].get("dovecot_db_hosts")))
                for name, h in sorted(hosts.items())
                if "postfix_db_hosts" in h["options"] or "dovecot_db_hosts" in h["options"])


SINGLE_DB_ELSEWHERE = dict(groups=dict(mail_mx=["mx1"], mail_store=["mx1"], mail_db=["db1"]),
                           hosts=dict(mx1={"ansible_facts": facts("10.0.0.1")},
                                      db1={"ansible_facts": facts("10.0.0.5")}))
SHARDED_WITH_REPLICA = _with(SHARDED, groups=dict(mail_db_replica=["db2"]),
                             hosts=dict(db2={"ansible_facts": facts("10.0.0.54")}))
NFS_WITH_REPLICA_ON_A_SERVER = _with(NFS_SHARED, groups=dict(mail_db_replica=["ms2"]))


@pytest.mark.parametrize("topology, expected", [
    # The own server (the socket) first, then the primary, then the replicas.
    (SINGLE_WITH_FILTER_HOST, {"mx1": (["localhost"], ["localhost"])}),
    (SINGLE_DB_ELSEWHERE, {"mx1": (["10.0.0.5"], ["10.0.0.5"])}),
    (BACKUP, {"mx1": (["localhost", "10.0.0.2"], ["localhost", "10.0.0.2"]), "mx2": (["localhost", "10.0.0.1"], None)}),
    (SHARDED, {"smtp1": (["10.0.0.53"], None), "smtp2": (["10.0.0.53"], None), "proxy1": (None, ["10.0.0.53"]),
               "ms1": (None, ["10.0.0.53"]), "ms2": (None, ["10.0.0.53"])}),
    (SHARDED_WITH_REPLICA, {"smtp1": (["10.0.0.53", "10.0.0.54"], None), "smtp2": (["10.0.0.53", "10.0.0.54"], None),
                            "proxy1": (None, ["10.0.0.53", "10.0.0.54"]), "ms1": (None, ["10.0.0.53", "10.0.0.54"]),
                            "ms2": (None, ["10.0.0.53", "10.0.0.54"])}),
    (NFS_SHARED, {"ms1": (["10.0.0.53"], ["10.0.0.53"]), "ms2": (["10.0.0.53"], ["10.0.0.53"])}),
    (NFS_WITH_REPLICA_ON_A_SERVER, {"ms1": (["10.0.0.53", "10.0.0.203"], ["10.0.0.53", "10.0.0.203"]),
                                    "ms2": (["localhost", "10.0.0.53"], ["localhost", "10.0.0.53"])}),
], ids=["single", "single-db-elsewhere", "backup_mx", "sharded", "sharded-replica", "nfs_shared", "nfs-replica"])
def test_every_reader_lists_its_own_server_the_primary_then_the_replicas(topology, expected):
    assert _db_lists(wired(**topology)) == expected


def test_a_replica_serves_the_readers_of_every_other_host_over_tls():
    hosts = wired(**SHARDED_WITH_REPLICA)
    db2 = hosts["db2"]["options"]
    assert (db2["mail_database_mode"], db2["mail_database_bind_address"], db2["mail_database_tls"]) == \
        ("replica", "*", True)
    assert db2["mail_database_postfix_hosts"] == ["localhost", "127.0.0.1", "10.0.0.21", "10.0.0.22"]
    assert db2["mail_database_dovecot_hosts"] == ["localhost", "127.0.0.1", "10.0.0.41", "10.0.0.42",
                                                  "10.0.0.31", "fd00::31"]
    # Its readers verify the address they reach it at; it runs no reader of
    # its own: no localhost in its certificate.
    assert db2["tls_names"] == ["db2", "db2.example.test", "10.0.0.54"]
    # The moves wait on it until it has applied their flip (the account has no right there).
    assert db2["mail_database_mover_hosts"] == ["10.0.0.41", "10.0.0.42"]
    assert ("mail_database_mover_password", "non_empty") in \
        [(r["option"], r["rule"]) for r in hosts["db2"]["required"]]
    assert hosts["smtp1"]["options"]["postfix_db_ca_file"] == "/etc/ssl/certs/ca-certificates.crt"
    # It listens to exactly the readers.
    (mariadb,) = [item for item in hosts["db2"]["listens"] if item["port"] == 3306]
    assert mariadb["peers"] == ["ms1", "ms2", "proxy1", "smtp1", "smtp2"]
    # The primary: the same readers, and the replica.
    (mariadb,) = [item for item in hosts["ns1"]["listens"] if item["port"] == 3306]
    assert mariadb["peers"] == ["ms1", "ms2", "proxy1", "smtp1", "smtp2", "db2"]


def test_a_replica_on_a_mail_server_reads_itself_first_and_names_localhost():
    hosts = wired(**NFS_WITH_REPLICA_ON_A_SERVER)
    ms2 = hosts["ms2"]["options"]
    assert ms2["mail_database_tls"] is True and ms2["tls_names"][-2:] == ["10.0.0.203", "localhost"]
    # ms1 reads it too; the primary takes ms2's lookups while ms2's server is down.
    assert ms2["mail_database_postfix_hosts"] == ["localhost", "127.0.0.1", "10.0.0.202"]
    assert hosts["ns1"]["options"]["mail_database_postfix_hosts"] == [
        "localhost", "127.0.0.1", "10.0.0.202", "10.0.0.203", "fd00::203"]


def test_the_inventorys_list_wins():
    hosts = wired(**_with(BACKUP, hosts=dict(mx1={"postfix_db_hosts": ["localhost"]})))
    mx1 = hosts["mx1"]["options"]
    assert "postfix_db_hosts" not in mx1 and mx1["dovecot_db_hosts"] == ["localhost", "10.0.0.2"]


@pytest.mark.parametrize("host, old, new", [("mx1", "postfix_db_host", "postfix_db_hosts"),
                                            ("mx1", "dovecot_db_host", "dovecot_db_hosts"),
                                            ("mx2", "postfix_db_host", "postfix_db_hosts")])
def test_the_removed_single_host_options_are_refused_naming_their_successor(host, old, new):
    g, hv = inventory(**_with(BACKUP, hosts={host: {old: "10.0.0.9"}}),
                      common=dict(PASSWORDS, mailstack_domain="example.test"))
    assert "%s: %s was removed (see the changelog): set %s, a list of the database servers in the order to try " \
        "them, or leave it to the wiring" % (host, old, new) in mail_wiring(g, hv)["errors"]


def test_a_replica_without_the_primarys_tls_is_refused():
    g, hv = inventory(**_with(BACKUP, hosts=dict(mx2={"mail_database_tls": False})),
                      common=dict(PASSWORDS, mailstack_domain="example.test"))
    assert "mx2: mail_database_tls is False but the primary mx1 serves TLS: the readers list both servers with one " \
        "TLS setting (set it alike on both)" in mail_wiring(g, hv)["errors"]
    g, hv = inventory(**_with(BACKUP, hosts=dict(mx1={"mail_database_tls": False}, mx2={"mail_database_tls": False})),
                      common=dict(PASSWORDS, mailstack_domain="example.test"))
    result = mail_wiring(g, hv)
    assert result["errors"] == []
    # No TLS anywhere: no CA file, so the socket is read in clear too.
    assert result["hosts"]["mx1"]["options"]["postfix_db_ca_file"] == ""
    assert "localhost" not in result["hosts"]["mx1"]["options"]["tls_names"]


def test_acme_on_a_replica_its_primarys_readers_reach_by_address_is_refused():
    g, hv = inventory(**_with(BACKUP, hosts=dict(mx2={"tls_source": "acme"})),
                      common=dict(PASSWORDS, mailstack_domain="example.test"))
    errors = mail_wiring(g, hv)["errors"]
    assert any(e.startswith("mx2: tls_source=acme on a database host") for e in errors), errors


# The mail database as a Galera cluster (issue 28, step G): the sharded lab
# with its three nodes on hosts it already has (plan 3).
GALERA = dict(groups=dict(SHARDED["groups"], mail_db=["ns1", "proxy1", "ms2"]), hosts=SHARDED["hosts"])
GALERA_PASSWORDS = {"mail_database_admin_password": "adm", "mail_database_mover_password": "mv"}


def test_galera_nodes_and_their_readers():
    hosts = wired(GALERA["groups"], GALERA["hosts"], common=GALERA_PASSWORDS)
    ns1, proxy1, ms2, ms1, smtp1 = (hosts[h]["options"] for h in ("ns1", "proxy1", "ms2", "ms1", "smtp1"))
    nodes = ["10.0.0.53", "10.0.0.31", "10.0.0.42"]
    for name, node, server_id in (("ns1", ns1, 1), ("proxy1", proxy1, 2), ("ms2", ms2, 3)):
        assert "mail_database" in hosts[name]["roles"]
        assert {k: node[k] for k in ("mail_database_mode", "mail_database_galera_nodes", "mail_database_galera_hosts",
                                     "mail_database_bind_address", "mail_database_tls", "mail_database_server_id",
                                     "mail_database_binlog")} == {
            "mail_database_mode": "galera", "mail_database_galera_nodes": nodes,
            "mail_database_galera_hosts": ["ns1", "proxy1", "ms2"], "mail_database_bind_address": "*",
            "mail_database_tls": True, "mail_database_server_id": server_id, "mail_database_binlog": False}
        assert node["mail_database_galera_node_address"] == nodes[server_id - 1]
        # Each node's certificate names the address its readers and peers verify (SST: VERIFY_IDENTITY).
        assert nodes[server_id - 1] in node["tls_names"]
    # The accounts replicate: written once, the same hosts on every node,
    # every reader's address (the nodes' own readers reach the other nodes too).
    for option in ("mail_database_postfix_hosts", "mail_database_dovecot_hosts", "mail_database_mover_hosts",
                   "mail_database_roundcube_hosts", "mail_database_mailbox_hosts", "mail_database_domains"):
        assert ns1[option] == proxy1[option] == ms2[option], option
    assert ns1["mail_database_postfix_hosts"] == ["localhost", "127.0.0.1", "10.0.0.21", "10.0.0.22"]
    assert ns1["mail_database_dovecot_hosts"] == ["localhost", "127.0.0.1", "10.0.0.41", "10.0.0.42",
                                                  "10.0.0.31", "fd00::31"]
    assert ns1["mail_database_mover_hosts"] == ["10.0.0.41", "localhost", "127.0.0.1", "10.0.0.42"]
    # Every reader lists every node, its own socket first.
    assert smtp1["postfix_db_hosts"] == nodes
    assert ms1["dovecot_db_hosts"] == nodes
    assert proxy1["dovecot_db_hosts"] == ["localhost", "10.0.0.53", "10.0.0.42"]
    assert ms2["dovecot_db_hosts"] == ["localhost", "10.0.0.53", "10.0.0.31"]
    assert "localhost" in proxy1["tls_names"] and "localhost" in ms2["tls_names"]
    assert smtp1["postfix_db_ca_file"] == ms1["dovecot_db_ca_file"] == "/etc/ssl/certs/ca-certificates.crt"
    # Roundcube on proxy1, a node: its own node by the socket.
    assert (proxy1["webmail_db_host"], proxy1["webmail_db_ca_file"]) == ("localhost", "")
    assert ns1["mail_database_roundcube_hosts"] == ["localhost", "127.0.0.1"]
    # The Galera ports open to the other nodes only; SQL to the readers and nodes.
    listens = dict((l["port"], l["peers"]) for l in hosts["ms2"]["listens"] if l["role"] == "mail_database")
    assert listens[4567] == listens[4568] == listens[4444] == ["ns1", "proxy1"]
    assert set(listens[3306]) == {"smtp1", "smtp2", "ms1", "proxy1", "ns1"}
    # Any node may write the accounts: each needs their secrets.
    required = [r["option"] for r in hosts["ms2"]["required"]]
    for option in ("mail_database_admin_password", "mail_database_mover_password", "mail_database_roundcube_password"):
        assert option in required, required


def test_galera_webmail_hosts_take_the_nodes_in_turn():
    groups = dict(GALERA["groups"], mail_webmail=["web1", "web2"], mail_db=["db1", "db2", "db3"])
    hosts = dict(GALERA["hosts"], web1={"ansible_facts": facts("10.0.0.61")}, web2={"ansible_facts": facts("10.0.0.62")},
                 db1={"ansible_facts": facts("10.0.0.71")}, db2={"ansible_facts": facts("10.0.0.72")},
                 db3={"ansible_facts": facts("10.0.0.73")})
    wired_hosts = wired(groups, hosts, common=dict(GALERA_PASSWORDS, webmail_des_key="x" * 24))
    assert wired_hosts["web1"]["options"]["webmail_db_host"] == "10.0.0.71"
    assert wired_hosts["web2"]["options"]["webmail_db_host"] == "10.0.0.72"
    assert wired_hosts["db3"]["options"]["mail_database_roundcube_hosts"] == ["10.0.0.61", "10.0.0.62"]
    assert wired_hosts["smtp1"]["options"]["postfix_db_hosts"] == ["10.0.0.71", "10.0.0.72", "10.0.0.73"]


def test_two_database_hosts_or_replicas_beside_galera_are_refused():
    g, hv = inventory(dict(SHARDED["groups"], mail_db=["ns1", "proxy1"]), SHARDED["hosts"],
                      dict(PASSWORDS, mailstack_domain="example.test"))
    assert any("group 'mail_db' has 2 hosts (ns1, proxy1)" in e for e in mail_wiring(g, hv)["errors"])
    g, hv = inventory(dict(GALERA["groups"], mail_db_replica=["ms1"]), SHARDED["hosts"],
                      dict(PASSWORDS, mailstack_domain="example.test"))
    assert any("group 'mail_db_replica' (ms1) beside 3 'mail_db' hosts" in e for e in mail_wiring(g, hv)["errors"])
