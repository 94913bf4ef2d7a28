"""Role firewall's rules (plugins/plugin_utils/firewall.py, the wiring's
firewall_rules, the filter mail_firewall_ruleset), on every example
inventory with the firewall on (mailstack_testlib.firewall):

- the whole nft text of every host equals the golden one in
  tests/unit/firewall/<topology>.nft (read them: they are the firewall an
  operator gets; MAILSTACK_WRITE_GOLDEN=1 rewrites them after a change that
  is meant);
- established/related first, then the loopback and ICMP, then Ansible's own
  connection and SSH before any other port, the TCP reset last;
- every listen's every peer is admitted by each of its addresses, and no
  port is opened to anyone the listens do not name (no rule without peers);
- the firewall is off by default (no rules wired, no address needed), runs
  last, on the mail hosts only, and requires the administrators' networks.

tests/integration/test_firewall_nft.py hands the same texts to nft.
"""

import ipaddress
import os
import re
from pathlib import Path

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.mailops.mailstack.plugins.filter.firewall import mail_firewall_ruleset
from ansible_collections.mailops.mailstack.plugins.plugin_utils.firewall import firewall_rules, ruleset, ssh_client
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.registry import ROLE_WIRINGS, ROLES
from ansible_collections.mailops.mailstack.plugins.plugin_utils.wiring.wire import wire

from mailstack_testlib.firewall import ADMIN_NETWORKS, SSH_CLIENT, TOPOLOGIES, mail_hosts, wired

GOLDEN = Path(__file__).resolve().parent / "firewall"
ACCEPT = re.compile(r"^(?:(ip6?) saddr (\S+|\{ [^}]* \}) )?(tcp|udp) dport (\d+) accept$")


@pytest.fixture(scope="module", params=TOPOLOGIES)
def example(request):
    groups, hostvars, wiring = wired(request.param)
    assert wiring["errors"] == [], wiring["errors"]
    return request.param, groups, hostvars, wiring


def text_of(wiring, host):
    return mail_firewall_ruleset(wiring["hosts"][host]["options"]["firewall_rules"], ADMIN_NETWORKS, SSH_CLIENT, [])


def golden_text(groups, wiring):
    return "".join("# ===== %s\n%s" % (host, text_of(wiring, host)) for host in mail_hosts(groups, wiring))


def rule_lines(text):
    """The rules of the chain (without its type line and comments), in order."""
    body = text.split("policy drop;\n", 1)[1].rsplit("\t}\n}", 1)[0]
    return [line.strip() for line in body.splitlines() if line.strip() and not line.strip().startswith("#")]


def accepts(text):
    """[(family or None, set of networks or None, proto, port)] of the port rules."""
    found = []
    for line in rule_lines(text):
        m = ACCEPT.match(line)
        if m:
            family, sources, proto, port = m.groups()
            networks = None if sources is None else set(
                ipaddress.ip_network(s) for s in sources.strip("{} ").split(", "))
            found.append((family, networks, proto, int(port)))
    return found


def admitted(text, proto, port, address):
    address = ipaddress.ip_address(address)
    return any(p == proto and n == port and (nets is None or any(address in net for net in nets))
               for _family, nets, p, n in accepts(text))


def test_the_rules_of_every_host_are_the_golden_ones(example):
    topology, groups, _hostvars, wiring = example
    text = golden_text(groups, wiring)
    path = GOLDEN / ("%s.nft" % topology)
    if os.environ.get("MAILSTACK_WRITE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), "%s's rules differ from %s (MAILSTACK_WRITE_GOLDEN=1 rewrites it)" % (
        topology, path)


def test_established_first_then_loopback_icmp_then_ssh_and_the_reset_last(example):
    _topology, groups, hostvars, wiring = example
    for host in mail_hosts(groups, wiring):
        lines = rule_lines(text_of(wiring, host))
        assert lines[:6] == ["ct state established,related accept", "ct state invalid drop", "iif lo accept",
                             "meta l4proto icmp accept", "meta l4proto ipv6-icmp accept",
                             "ip6 saddr fe80::/10 udp sport 547 udp dport 546 accept"], host
        ssh = int(hostvars[host]["ansible_port"]) if "ansible_port" in hostvars[host] else 22
        # Ansible's own connection, then SSH from the administrators' networks.
        assert lines[6] == "ip saddr 203.0.113.7 tcp dport 22 accept", host
        assert lines[7] == "ip saddr 203.0.113.0/24 tcp dport %d accept" % ssh, host
        assert lines[8] == "ip6 saddr 2001:db8:ad::/48 tcp dport %d accept" % ssh, host
        assert lines[-1] == "meta l4proto tcp reject with tcp reset", host
        assert all("accept" in line for line in lines[:-1] if line != "ct state invalid drop"), host


def test_every_peer_of_every_listen_is_admitted_by_each_of_its_addresses(example):
    _topology, groups, hostvars, wiring = example
    for host in mail_hosts(groups, wiring):
        text = text_of(wiring, host)
        for item in wiring["hosts"][host]["listens"]:
            for peer in item["peers"]:
                if peer == "internet":
                    assert (None, None, item["proto"], item["port"]) in accepts(text), (host, item)
                    continue
                if peer == "controller":
                    addresses = ["203.0.113.7"] + [str(ipaddress.ip_network(n).network_address)
                                                   for n in ADMIN_NETWORKS]
                else:
                    addresses = [str(hostvars[peer]["mailstack_address"])]
                for address in addresses:
                    assert admitted(text, item["proto"], item["port"], address), (
                        "%s: %s/%s does not admit %s (%s)" % (host, item["port"], item["proto"], peer, address))


def test_no_port_is_open_to_anyone_the_listens_do_not_name(example):
    """Every accept is a listen's (or Ansible's own SSH connection), and
    admits only its peers' addresses (anyone only where a peer is the
    internet): no rule without peers."""
    _topology, groups, hostvars, wiring = example
    for host in mail_hosts(groups, wiring):
        listens = wiring["hosts"][host]["listens"]
        assert all(item["peers"] for item in listens), host
        for _family, networks, proto, port in accepts(text_of(wiring, host)):
            mine = [item for item in listens if (item["port"], item["proto"]) == (port, proto)]
            assert mine or (proto, port) == ("tcp", 22), "%s: %s/%s is opened by no listen" % (host, port, proto)
            peers = set(p for item in mine for p in item["peers"])
            if networks is None:
                assert "internet" in peers, "%s: %s/%s is open to anyone, its peers are %s" % (
                    host, port, proto, sorted(peers))
                continue
            allowed = set(ipaddress.ip_network(n) for n in ADMIN_NETWORKS + ["203.0.113.7/32"])
            allowed.update(ipaddress.ip_network(str(hostvars[p]["mailstack_address"]))
                           for p in peers if p not in ("internet", "controller"))
            assert networks <= allowed, "%s: %s/%s admits %s" % (
                host, port, proto, sorted(map(str, networks - allowed)))


def test_an_internal_port_is_closed_to_the_internet_and_to_the_wrong_tier():
    _groups, hostvars, wiring = wired("sharded")
    ms1 = text_of(wiring, "ms1")
    address = dict((h, str(hostvars[h]["mailstack_address"])) for h in wiring["hosts"])
    assert admitted(ms1, "tcp", 24245, address["ms2"])  # doveadm: the other shard
    assert not admitted(ms1, "tcp", 24245, address["smtp1"])
    assert not admitted(ms1, "tcp", 24245, "192.0.2.200")  # the internet
    assert admitted(ms1, "tcp", 24, address["smtp1"])  # LMTP from the SMTP tier
    assert not admitted(ms1, "tcp", 3306, address["ms2"])  # no database on a shard
    db1 = text_of(wiring, "db1")
    assert admitted(db1, "tcp", 3306, address["proxy1"]) and not admitted(db1, "tcp", 3306, "192.0.2.200")
    smtp1 = text_of(wiring, "smtp1")
    assert admitted(smtp1, "tcp", 25, "192.0.2.200") and admitted(smtp1, "tcp", 587, "192.0.2.200")


def test_a_galera_node_admits_galera_from_the_other_nodes_only():
    _groups, hostvars, wiring = wired("sharded", groups_update={"mail_db": ["db1", "ms1", "ms2"]})
    assert wiring["errors"] == [], wiring["errors"]
    address = dict((h, str(hostvars[h]["mailstack_address"])) for h in wiring["hosts"])
    ms1 = text_of(wiring, "ms1")
    for port in (4567, 4568, 4444):
        assert admitted(ms1, "tcp", port, address["db1"]) and admitted(ms1, "tcp", port, address["ms2"]), port
        assert not admitted(ms1, "tcp", port, address["smtp1"]), port
        assert not admitted(ms1, "tcp", port, address["proxy1"]), port
    assert admitted(ms1, "tcp", 3306, address["smtp1"]) and not admitted(ms1, "tcp", 3306, "192.0.2.200")


def test_the_firewall_is_off_by_default_and_needs_no_address_then():
    groups, hostvars, wiring = wired("sharded", extra={})
    assert wiring["errors"] == []
    for host in mail_hosts(groups, wiring):
        assert "firewall_rules" not in wiring["hosts"][host]["options"], host
        assert "firewall_admin_networks" not in [r["option"] for r in wiring["hosts"][host]["required"]], host


def test_on_it_requires_the_administrators_networks():
    groups, _hostvars, wiring = wired("single")
    for host in mail_hosts(groups, wiring):
        required = dict((r["option"], r["rule"]) for r in wiring["hosts"][host]["required"])
        assert required.get("firewall_admin_networks") == "non_empty", host


def test_it_runs_last_on_every_mail_host_and_not_on_the_labs_outside_hosts():
    assert ROLES[-1] == "firewall"
    groups = {"all": ["ns1", "mx1", "outside1"], "mail_mx": ["mx1"], "mail_store": ["mx1"], "mail_db": ["mx1"],
              "mail_dns": ["ns1"], "lab_outside": ["outside1"]}
    hostvars = dict((h, {"mailstack_address": "192.0.2.%d" % (i + 1), "mailstack_domain": "example.org",
                         "firewall_enabled": True, "firewall_admin_networks": ["203.0.113.0/24"]})
                    for i, h in enumerate(groups["all"]))
    result = wire(groups, hostvars)
    assert result["errors"] == []
    assert [h for h in groups["all"] if "firewall" in result["hosts"][h]["roles"]] == ["ns1", "mx1"]
    assert result["hosts"]["mx1"]["roles"][-1] == "firewall"
    assert "firewall_rules" not in result["hosts"]["outside1"]["options"]


def test_a_peer_without_an_address_is_an_error_naming_it():
    # filter1's amavisd-new admits mx1, which has no address.
    groups = {"all": ["filter1", "mx1"], "mail_mx": ["mx1"], "mail_store": ["mx1"], "mail_db": ["mx1"],
              "mail_filter": ["filter1"]}
    hostvars = {"filter1": {"mailstack_address": "192.0.2.30"}, "mx1": {}}
    for host in hostvars.values():
        host.update(mailstack_domain="example.org", firewall_enabled=True, firewall_admin_networks=["203.0.113.0/24"])
    errors = wire(groups, hostvars)["errors"]
    assert any(e.startswith("mx1: no address") and "filter1, whose firewall admits it" in e for e in errors), errors


def test_a_peer_is_admitted_by_its_ipv4_and_ipv6_addresses():
    rules = firewall_rules([{"port": 3306, "proto": "tcp", "service": "MariaDB", "role": "mail_database",
                             "peers": ["mx1", "mx2"]}],
                           {"mx1": ["192.0.2.25", "2001:db8::25"], "mx2": ["192.0.2.26"]}.get)
    assert rules[0]["sources"] == ["192.0.2.25", "2001:db8::25", "192.0.2.26"]
    lines = rule_lines(ruleset(rules))
    assert "ip saddr { 192.0.2.25, 192.0.2.26 } tcp dport 3306 accept" in lines
    assert "ip6 saddr 2001:db8::25 tcp dport 3306 accept" in lines


def test_ssh_is_open_to_the_administrators_even_when_no_listen_names_the_controller():
    # firewall_rules set by hand, or the role applied without the wiring.
    rules = [{"port": 25, "proto": "tcp", "service": "SMTP", "peers": ["internet"], "sources": ["internet"]}]
    assert rule_lines(ruleset(rules, ["203.0.113.0/24"], "203.0.113.7 50022 2222"))[6:9] == [
        "ip saddr 203.0.113.7 tcp dport 2222 accept", "ip saddr 203.0.113.0/24 tcp dport 2222 accept",
        "tcp dport 25 accept"]
    assert rule_lines(ruleset([], ["203.0.113.0/24"]))[6:] == [
        "ip saddr 203.0.113.0/24 tcp dport 22 accept", "meta l4proto tcp reject with tcp reset"]


def test_a_listen_without_an_address_to_admit_gets_no_rule():
    rules = [{"port": 22, "proto": "tcp", "service": "SSH", "role": "common", "peers": ["controller"],
              "sources": ["controller"]},
             {"port": 24, "proto": "tcp", "service": "LMTP", "role": "dovecot", "peers": [], "sources": []}]
    text = ruleset(rules)  # no administrators' networks, no SSH_CLIENT
    assert accepts(text) == []
    assert "# 24/tcp LMTP [dovecot] from: nobody - no address to admit: closed" in text
    assert "# 22/tcp SSH [common] from: controller - no address to admit: closed" in text


def test_overlapping_sources_are_merged_and_internet_admits_anyone():
    rules = [{"port": 22, "proto": "tcp", "service": "SSH", "peers": ["controller"], "sources": ["controller"]},
             {"port": 25, "proto": "tcp", "service": "SMTP", "peers": ["internet"], "sources": ["internet"]}]
    lines = rule_lines(ruleset(rules, ["10.0.0.0/8", "10.1.0.0/16"], "10.1.2.3 4000 2222"))
    assert lines[6:] == ["ip saddr 10.1.2.3 tcp dport 2222 accept", "ip saddr 10.0.0.0/8 tcp dport 22 accept",
                         "tcp dport 25 accept", "meta l4proto tcp reject with tcp reset"]


@pytest.mark.parametrize("value, expected", [
    ("203.0.113.7 50022 22", ("203.0.113.7", 22)),
    ("2001:db8::7 50022 2222", ("2001:db8::7", 2222)),
    ("::ffff:203.0.113.7 50022 22", ("203.0.113.7", 22)),  # a dual-stack sshd's IPv4 client
    ("", None), (None, None), ("UNKNOWN 65535 65535", None), ("203.0.113.7 50022", None),
    ("203.0.113.7 50022 0", None),
])
def test_ssh_client(value, expected):
    assert ssh_client(value) == expected


def test_extra_rules_come_after_the_listens():
    rules = [{"port": 25, "proto": "tcp", "service": "SMTP", "peers": ["internet"], "sources": ["internet"]}]
    extra = [{"port": 9100, "sources": ["192.0.2.99", "2001:db8::99"], "comment": "node exporter"},
             {"port": 161, "proto": "udp", "sources": ["controller"]}]
    text = ruleset(rules, ["203.0.113.0/24"], "", extra)
    assert rule_lines(text)[6:] == [
        "ip saddr 203.0.113.0/24 tcp dport 22 accept",
        "tcp dport 25 accept", "ip saddr 192.0.2.99 tcp dport 9100 accept",
        "ip6 saddr 2001:db8::99 tcp dport 9100 accept",
        "ip saddr 203.0.113.0/24 udp dport 161 accept", "meta l4proto tcp reject with tcp reset"]
    assert "# 9100/tcp node exporter (firewall_extra_rules)" in text


@pytest.mark.parametrize("extra, message", [
    ([{"port": 70000, "sources": ["internet"]}], "firewall_extra_rules[0]: port 70000"),
    ([{"port": 80, "proto": "sctp", "sources": ["internet"]}], "firewall_extra_rules[0]: proto 'sctp'"),
    ([{"port": 80, "sources": []}], "firewall_extra_rules[0]: sources is empty"),
    ([{"port": 80, "sources": "internet"}], "firewall_extra_rules[0]: sources must be a list"),
    ([{"port": 80, "sources": ["internet"]}, {"port": 81, "sources": ["mx1"]}],
     "firewall_extra_rules[1]: sources: 'mx1' is not an IP address"),
    ([{"port": 80, "sources": ["internet"], "to": "x"}], "firewall_extra_rules[0]: unknown field to"),
    (["tcp dport 80 accept"], "firewall_extra_rules[0]: a mapping"),
])
def test_a_wrong_extra_rule_fails_naming_it_and_its_field(extra, message):
    with pytest.raises(AnsibleFilterError) as e:
        ruleset([], ["203.0.113.0/24"], "", extra)
    assert message in str(e.value)


def test_a_wrong_administrators_network_fails_naming_it():
    with pytest.raises(AnsibleFilterError) as e:
        ruleset([], ["203.0.113.0/24", "admins"])
    assert "firewall_admin_networks[1]: 'admins' is not an IP address or network" in str(e.value)


def test_every_wiring_but_the_firewalls_leaves_the_listens_alone():
    # from_listens: only the firewall makes options of the listens.
    assert [w.name for w in ROLE_WIRINGS if w.from_listens.__name__ != "nothing_from_listens"] == ["firewall"]
