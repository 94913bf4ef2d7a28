"""The wiring with several mail domains (mailstack_domains): what each role
gets for each domain, in each topology, and the refusal of bad input naming
the domain and the field. The tables of the topologies are test_wiring.py's."""

import pytest

from ansible_collections.mailops.mailstack.plugins.filter.wiring import mail_wiring

from test_wiring import BACKUP, NFS_SHARED, PASSWORDS, SHARDED, SINGLE_WITH_FILTER_HOST, inventory

# The primary, and a second domain with options of its own.
DOMAINS = ["example.test", {"name": "example.net", "dkim_selector": "{host}-net", "dmarc_policy": "none",
                            "mta_sts_mode": "enforce"}]


def wire(topology, domains=None, **common):
    common = dict(PASSWORDS, mailstack_domains=DOMAINS if domains is None else domains, **common)
    return mail_wiring(*inventory(topology["groups"], topology["hosts"], common))


def wired(topology, domains=None, **common):
    result = wire(topology, domains, **common)
    assert result["errors"] == [], result["errors"]
    return result["hosts"]


def zones(hosts, dns_host="ns1"):
    return dict((z["name"], z) for z in hosts[dns_host]["options"]["dns_zones"])


def records(zone):
    by_name = {}
    for r in zone["records"]:
        by_name.setdefault((r["name"], r["type"]), []).append(r["value"])
    return by_name


# (topology, signing hosts, webmail hosts, the MX targets, the primary database)
TOPOLOGIES = [
    pytest.param(SINGLE_WITH_FILTER_HOST, ["mx1"], ["mx1"], ["5 mx1.example.test."], "mx1", id="single"),
    pytest.param(BACKUP, ["mx1"], [], ["5 mx1.example.test.", "10 mx2.example.test."], "mx1", id="backup_mx"),
    pytest.param(NFS_SHARED, ["ms1", "ms2"], [], ["5 mail.example.test."], "ns1", id="nfs_shared"),
    pytest.param(SHARDED, ["smtp1", "smtp2"], ["proxy1"], ["5 smtp.example.test."], "ns1", id="sharded"),
]


@pytest.mark.parametrize("topology, signers, webmail, mx, primary", TOPOLOGIES)
def test_two_domains_in_each_topology(topology, signers, webmail, mx, primary):
    # The second enforces MTA-STS where a web server serves its policy.
    second_domain = dict(DOMAINS[1], mta_sts_mode="enforce" if webmail else "testing")
    hosts = wired(topology, [DOMAINS[0], second_domain])
    # A zone per domain; the second's MX and name servers are the hosts'
    # names in the primary, which alone holds the hosts' addresses.
    by_domain = zones(hosts)
    assert list(by_domain) == ["example.test", "example.net"]
    first, second = records(by_domain["example.test"]), records(by_domain["example.net"])
    assert sorted(first[("@", "MX")]) == sorted(second[("@", "MX")]) == sorted(mx)
    assert by_domain["example.net"]["nameservers"] == ["ns1.example.test."]
    assert [name for name, kind in second if kind in ("A", "AAAA") and name != "mta-sts"] == []
    assert second[("@", "TXT")] == ['"v=spf1 mx -all"']
    # Each domain's DMARC policy, reports to its own postmaster.
    assert first[("_dmarc", "TXT")] == ['"v=DMARC1; p=quarantine; rua=mailto:postmaster@example.test"']
    assert second[("_dmarc", "TXT")] == ['"v=DMARC1; p=none; rua=mailto:postmaster@example.net"']
    assert second[("_smtp._tls", "TXT")] == ['"v=TLSRPTv1; rua=mailto:postmaster@example.net"']
    # Each signing host signs both, the second with its own selector.
    for host in signers:
        assert hosts[host]["options"]["dkim_domains"] == [
            "example.test", {"name": "example.net", "selector": host + "-net"}], host
    assert [h for h, wired_host in hosts.items() if "dkim_domains" in wired_host["options"]] == signers
    # The database primary makes both.
    assert hosts[primary]["options"]["mail_database_domains"] == [
        {"name": "example.test", "kind": "local"}, {"name": "example.net", "kind": "local"}]
    # MTA-STS: a policy per domain (its own mode), its mx lines the MX names,
    # served under each domain's name, which the certificates carry.
    for host in webmail:
        policies = hosts[host]["options"]["webmail_mta_sts_policies"]
        assert [p["server_name"] for p in policies] == ["mta-sts.example.test", "mta-sts.example.net"]
        assert "mode: testing\r\n" in policies[0]["policy"] and "mode: enforce\r\n" in policies[1]["policy"]
        names = [line.split()[-1] for line in mx]
        assert all("mx: %s\r\n" % n.rstrip(".") in p["policy"] for p in policies for n in names)
        assert hosts[host]["options"]["tls_names"][-2:] == ["mta-sts.example.test", "mta-sts.example.net"]
        assert second[("mta-sts", "A")] == first[("mta-sts", "A")]
        assert len(second[("_mta-sts", "TXT")]) == 1 and second[("_mta-sts", "TXT")] != first[("_mta-sts", "TXT")]
    if not webmail:
        assert ("_mta-sts", "TXT") not in second
        # Enforcing it there is refused, naming the domain and its field.
        assert wire(topology)["errors"] == [
            "ns1: mailstack_domains (example.net): mta_sts_mode is 'enforce' but the inventory has no 'mail_webmail' "
            "host to serve the policy at https://mta-sts.example.net/ (set it to 'off', or add one)"]


def test_the_one_domain_form_is_the_list_of_one():
    single = SINGLE_WITH_FILTER_HOST
    as_list = wired(single, ["example.test"])
    g, hv = inventory(single["groups"], single["hosts"], dict(PASSWORDS, mailstack_domain="example.test"))
    as_one = mail_wiring(g, hv)["hosts"]
    for host in as_one:
        options = dict(as_list[host]["options"])
        # The primary, given to what reads mailstack_domain, when the inventory gives the list.
        assert options.pop("mailstack_domain", "example.test") == "example.test"
        assert options == as_one[host]["options"], host
    # Both, when they agree.
    assert wired(single, ["example.test"], mailstack_domain="example.test")["mx1"]["options"] == \
        as_one["mx1"]["options"]


def test_a_relay_domain_is_made_and_published_for_receiving_only():
    relay = {"name": "legacy.example.test", "kind": "relay", "relay_host": "[192.0.2.7]:25"}
    hosts = wired(SINGLE_WITH_FILTER_HOST, ["example.test", relay])
    assert hosts["mx1"]["options"]["mail_database_domains"][1] == relay
    # Its mail is sent by its own server: not signed here, no SPF nor DMARC of ours.
    assert hosts["mx1"]["options"]["dkim_domains"] == ["example.test"]
    zone = records(zones(hosts)["legacy.example.test"])
    assert zone[("@", "MX")] == ["5 mx1.example.test."] and ("_dmarc", "TXT") not in zone and \
        ("@", "TXT") not in zone
    # Senders to it reach our MX: its MTA-STS policy is ours to serve.
    assert ("_mta-sts", "TXT") in zone
    assert "mta-sts.legacy.example.test" in hosts["mx1"]["options"]["tls_names"]


def test_the_inventory_wins_over_what_the_domains_give():
    hosts = dict(SINGLE_WITH_FILTER_HOST["hosts"])
    hosts["mx1"] = dict(hosts["mx1"], dkim_domains=["example.test"], webmail_mta_sts_policies=[])
    result = wired(dict(SINGLE_WITH_FILTER_HOST, hosts=hosts))
    assert "dkim_domains" not in result["mx1"]["options"]
    assert "webmail_mta_sts_policies" not in result["mx1"]["options"]


def test_mta_sts_off_for_one_domain():
    hosts = wired(SINGLE_WITH_FILTER_HOST, ["example.test", {"name": "example.net", "mta_sts_mode": "off"}])
    assert [p["server_name"] for p in hosts["mx1"]["options"]["webmail_mta_sts_policies"]] == \
        ["mta-sts.example.test"]
    assert "mta-sts.example.net" not in hosts["mx1"]["options"]["tls_names"]
    assert [r for r in zones(hosts)["example.net"]["records"] if "mta-sts" in r["name"]] == []


@pytest.mark.parametrize("domains, error", [
    (["example.test", "example.net", "example.net"], "mailstack_domains[2] (example.net): the domain is listed twice"),
    (["example.test", "Example.NET"], "mailstack_domains[1] (Example.NET): name must be a domain name in lower case"),
    (["example.test", "exa mple.net"], "mailstack_domains[1] (exa mple.net): name must be a domain name"),
    (["example.test", {"name": "example.net", "dkim": "s1"}],
     "mailstack_domains[1] (example.net): unknown option(s) dkim (known: name, kind, relay_host, dkim_selector, "
     "dmarc_policy, mta_sts_mode, default_quota)"),
    (["example.test", {"name": "example.net", "default_quota": "lots"}],
     "mailstack_domains[1] (example.net): default_quota: 'lots' is not a size"),
    (["example.test", {"name": "example.net", "kind": "relay", "relay_host": "[192.0.2.7]", "default_quota": "1G"}],
     "mailstack_domains[1] (example.net): default_quota is only for a local domain"),
    (["example.test", {"name": "example.net", "kind": "forward"}],
     "mailstack_domains[1] (example.net): kind must be one of local, relay, not 'forward'"),
    (["example.test", {"name": "example.net", "dmarc_policy": "drop"}],
     "mailstack_domains[1] (example.net): dmarc_policy must be one of none, quarantine, reject, not 'drop'"),
    (["example.test", {"name": "example.net", "mta_sts_mode": "strict"}],
     "mailstack_domains[1] (example.net): mta_sts_mode must be one of off, none, testing, enforce, not 'strict'"),
    (["example.test", {"name": "example.net", "kind": "relay"}],
     "mailstack_domains[1] (example.net): relay_host must be the next hop the domain's mail is forwarded to"),
    (["example.test", {"name": "example.net", "relay_host": "[192.0.2.7]"}],
     "mailstack_domains[1] (example.net): relay_host is only for kind relay"),
    ([{"name": "example.test", "kind": "relay", "relay_host": "[192.0.2.7]"}],
     "mailstack_domains[0] (example.test): the first domain is the primary, whose names the hosts carry: it must "
     "be local"),
    (["example.test", {"name": "example.net", "dkim_selector": "bad.selector"}],
     "mailstack_domains[1] (example.net): dkim_selector 'bad.selector' must be one DNS label"),
    (["example.test", 7], "mailstack_domains[1]: 7 is neither a domain name nor a dict"),
    ("example.test", "mailstack_domains must be a list of domains (names or dicts), not 'example.test'"),
])
def test_bad_domains_are_refused_naming_the_domain_and_the_field(domains, error):
    errors = wire(SINGLE_WITH_FILTER_HOST, domains)["errors"]
    assert any(e.startswith(error) for e in errors), errors


def test_a_selector_shared_by_several_signing_hosts_is_refused():
    domains = ["example.test", {"name": "example.net", "dkim_selector": "mail"}]
    assert "mailstack_domains (example.net): dkim_selector 'mail' would be the same on smtp1, smtp2, which all " \
        "sign its mail with keys of their own: put '{host}' in it" in wire(SHARDED, domains)["errors"]
    # One signing host may have it.
    assert wired(SINGLE_WITH_FILTER_HOST, domains)["mx1"]["options"]["dkim_domains"][1] == \
        {"name": "example.net", "selector": "mail"}


def test_the_primary_and_the_one_domain_form_must_agree():
    errors = wire(SINGLE_WITH_FILTER_HOST, mailstack_domain="example.org")["errors"]
    assert "mailstack_domain (example.org) and the first of mailstack_domains (example.test) differ: the first is " \
        "the primary domain; set one of the two" in errors


def test_the_domains_are_one_setting_of_the_whole_site():
    hosts = dict(SINGLE_WITH_FILTER_HOST["hosts"])
    hosts["mx1"] = dict(hosts["mx1"], mailstack_domains=["example.test"])
    errors = wire(dict(SINGLE_WITH_FILTER_HOST, hosts=hosts))["errors"]
    assert len(errors) == 1 and errors[0].startswith("mailstack_domains differs between hosts"), errors
