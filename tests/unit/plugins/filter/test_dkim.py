"""mail_dkim_records: the selector records site.yml publishes from the
signing hosts' reports."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.mailops.mailstack.plugins.filter.dkim import dkim_txt, mail_dkim_records

KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "x" * 340 + "IDAQAB"


def report(selectors, domains=("example.test",), signing=None):
    return {"domains": list(domains), "signing": signing or sorted(selectors)[0], "selectors": dict(selectors)}


def test_a_record_per_domain_and_selector_of_each_host():
    records = mail_dkim_records({
        "mx1": report({"mx1-1": KEY, "mx1-2": "QUJD"}, domains=["example.test", "example.org"]),
        "mx2": report({"mx2-1": KEY}),
    })
    assert [(r["zone"], r["name"], r["type"]) for r in records] == [
        ("example.test", "mx1-1._domainkey", "TXT"), ("example.org", "mx1-1._domainkey", "TXT"),
        ("example.test", "mx1-2._domainkey", "TXT"), ("example.org", "mx1-2._domainkey", "TXT"),
        ("example.test", "mx2-1._domainkey", "TXT"),
    ]
    assert records[2]["value"] == '"v=DKIM1; k=rsa; p=QUJD"'


def test_a_key_per_domain_and_selector():
    """Reports since keys are per domain: each domain's selectors with their own keys."""
    records = mail_dkim_records({
        "mx1": {"domains": ["example.test", "example.net"], "signing": {"example.test": "mx1-1", "example.net": "s2"},
                "keys": {"example.test": {"mx1-1": KEY}, "example.net": {"s2": "QUJD", "s1": KEY}}},
        "mx2": {"domains": ["example.net"], "keys": {"example.net": {"mx2-1": KEY}}},
    })
    assert [(r["zone"], r["name"]) for r in records] == [
        ("example.test", "mx1-1._domainkey"), ("example.net", "s1._domainkey"), ("example.net", "s2._domainkey"),
        ("example.net", "mx2-1._domainkey")]
    assert records[2]["value"] == '"v=DKIM1; k=rsa; p=QUJD"'
    other = {"mx2": {"keys": {"example.net": {"mx2-1": KEY}}}}
    assert [r["zone"] for r in mail_dkim_records(other, ["example.test"])] == []


def test_long_keys_are_split_into_strings_a_txt_record_can_hold():
    value = dkim_txt(KEY)
    parts = value[1:-1].split('" "')
    assert all(len(p) <= 255 for p in parts) and len(parts) == 2
    assert "".join(parts) == "v=DKIM1; k=rsa; p=" + KEY


def test_only_the_zones_asked_for_and_hosts_without_a_report_are_skipped():
    records = mail_dkim_records({"mx1": report({"mx1-1": KEY}, domains=["example.test", "elsewhere.test"]),
                                 "smtp9": {}}, ["example.test"])
    assert [r["zone"] for r in records] == ["example.test"]


@pytest.mark.parametrize("reports, message", [
    ({"mx1": report({"bad.selector": KEY})}, "mx1: selector 'bad.selector' is not one DNS label"),
    ({"mx1": report({"mx1-1": "not base64!"})}, "mx1: the public key of selector 'mx1-1' is not base64"),
    ({"mx1": report({"s1": KEY}), "mx2": report({"s1": KEY})}, "mx1 and mx2 both publish selector 's1'"),
    ({"mx1": "text"}, "mx1: 'text' is not a DKIM report"),
    ({"mx1": {"keys": {"example.test": "QUJD"}}}, "mx1: keys must map each domain to {selector: key}"),
    ({"mx1": {"keys": {"example.test": {"s1": KEY}}}, "mx2": {"keys": {"example.test": {"s1": KEY}}}},
     "mx1 and mx2 both publish selector 's1' of example.test"),
    ("text", "expects a list or dict"),
])
def test_bad_reports_are_refused_naming_the_host(reports, message):
    with pytest.raises(AnsibleFilterError, match=message.replace("(", r"\(")):
        mail_dkim_records(reports)
