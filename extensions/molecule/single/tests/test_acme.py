"""mx1's certificate by ACME (tls_source: acme): issued by the lab's pebble
on outside1 (extensions/molecule/shared/acme.yml), served on every port a
client meets, and renewed by certbot's timer unit without a failed
connection."""

import json
import os
import textwrap

import testinfra

import testlib
from testlib import client

testinfra_hosts = ["podman://outside1"]
MX = "mx1.example.test"
# (port, how TLS starts, the name the client asks for)
PORTS = [(25, "smtp", MX), (587, "smtp", MX), (465, "smtps", MX), (993, "imaps", MX), (995, "pop3s", MX),
         (443, "https", MX), (443, "https", "mta-sts.example.test"), (443, "https", "mta-sts.example.net")]

# A verified handshake on a port, trusting only pebble's root: the
# certificate served (its digest), or the error.
HANDSHAKE = r'''
import hashlib, socket
def handshake(port, kind, name, verify):
    try:
        if kind == "smtp":
            s = smtplib.SMTP(name, port, timeout=20)
            s.starttls(context=verify)
            sock = s.sock
        else:
            sock = verify.wrap_socket(socket.create_connection((name, port), timeout=20), server_hostname=name)
        der = sock.getpeercert(binary_form=True)
        sock.close()
        return {"serial": hashlib.sha256(der).hexdigest()[:16]}
    except Exception as e:  # noqa: BLE001 - every failure counts
        return {"error": "%s: %s" % (type(e).__name__, e)}
'''


# The digest of the certificate mx1's services read (the first of the chain),
# as handshake() computes it from what a port serves.
DIGEST = "openssl x509 -in /etc/ssl/mailstack/host.crt -outform DER | sha256sum | cut -c1-16"


def pebble_root():
    with open(os.path.join(testlib.state_dir("single"), "acme", "root.pem")) as f:
        return f.read()


def test_every_service_serves_the_certificate_pebble_issued(host):
    """Verified against pebble's root alone (not the lab CA), for the names
    clients use, on SMTP (STARTTLS), submission, SMTPS, IMAPS, POP3S and
    HTTPS (webmail and MTA-STS)."""
    got = client(host, HANDSHAKE + textwrap.dedent("""
        verify = ssl.create_default_context(cadata={root!r})
        print(json.dumps([handshake(port, kind, name, verify) for port, kind, name in {ports!r}]))
    """).format(root=pebble_root(), ports=PORTS))
    assert all("serial" in g for g in got), got
    # One certificate for all.
    assert len({g["serial"] for g in got}) == 1, got


def test_certbot_keeps_the_settings_its_timer_renews_with():
    mx = testinfra.get_host("podman://mx1")
    assert mx.service("certbot.timer").is_enabled and mx.service("certbot.timer").is_running
    conf = mx.file("/etc/letsencrypt/renewal/mailstack.conf").content_string
    for line in ("reuse_key = True", "renew_hook = /usr/local/sbin/mailstack-acme-deploy",
                 "authenticator = webroot", "server = https://"):
        assert line in conf, conf
    key = mx.file("/etc/ssl/private/mailstack.key")
    assert (key.user, key.group, key.mode) == ("root", "ssl-cert", 0o640)
    # The key the services use is certbot's, which its renewals keep.
    assert key.content_string == mx.file("/etc/letsencrypt/live/mailstack/privkey.pem").content_string


def test_a_renewal_by_the_timer_swaps_the_certificate_without_a_failed_connection(host):
    """While a client on outside1 keeps opening verified connections to every
    port, and holds an IMAP and a submission session open, mx1 runs
    certbot.service (what certbot.timer starts): the certificate is renewed
    with the same key, every port serves the new one, no connection failed
    and the held sessions still answer."""
    mx = testinfra.get_host("podman://mx1")
    key_before = mx.file("/etc/ssl/private/mailstack.key").sha256sum
    cert_before = mx.file("/etc/ssl/mailstack/host.crt").sha256sum
    old = mx.check_output(DIGEST)
    script = HANDSHAKE + """
import json, os, smtplib, imaplib, ssl, time
verify = ssl.create_default_context(cadata={root!r})
imap = imaplib.IMAP4_SSL({mx!r}, 993, ssl_context=verify)
imap.login("alice@example.test", "alice-lab-password")
sub = smtplib.SMTP({mx!r}, 587, timeout=20)
sub.starttls(context=verify)
sub.login("alice@example.test", "alice-lab-password")
seen, errors, rounds, last, new, until = {{}}, [], 0, {{}}, None, None
while True:
    if new is None and os.path.exists("/tmp/acme-stop"):
        # The renewed certificate's digest; from now on, go on until one
        # whole round served it everywhere, for at most 90 s.
        new, until = open("/tmp/acme-stop").read().strip(), time.time() + 90
    for port, kind, name in {ports!r}:
        r = handshake(port, kind, name, verify)
        key = "%s %d" % (name, port)
        if "error" in r:
            errors.append([key, r["error"]])
        else:
            last[key] = r["serial"]
            seen.setdefault(key, [])
            if not seen[key] or seen[key][-1] != r["serial"]:
                seen[key].append(r["serial"])
    rounds += 1
    open("/tmp/acme-rounds", "w").write(str(rounds))
    if new is not None and (set(last.values()) == {{new}} or time.time() > until):
        break
held = []
try:
    held.append(imap.noop()[0])
    imap.logout()
except Exception as e:  # noqa: BLE001
    held.append("imap: %s" % e)
try:
    held.append(sub.noop()[0])
    sub.quit()
except Exception as e:  # noqa: BLE001
    held.append("submission: %s" % e)
print(json.dumps({{"seen": seen, "last": last, "errors": errors, "rounds": rounds, "held": held}}))
""".format(root=pebble_root(), mx=MX, ports=PORTS)
    testlib.start_loop(host, "acme", script)
    renew = mx.run("systemctl start certbot.service")
    assert renew.rc == 0, mx.run("journalctl -u certbot.service -n 30 --no-pager").stdout
    new = mx.check_output(DIGEST)
    assert new != old
    got = testlib.stop_loop(host, "acme", new, 120)
    assert got["errors"] == [], got
    assert got["rounds"] >= 2, got
    # Every port served the old certificate first, then the new one, and no
    # other; in the end (within 90 s) the new one everywhere. A Postfix or
    # Dovecot process of the old generation may still take a connection
    # before it exits (old, new, old, new): both verify, so no client fails.
    assert len(got["seen"]) == len(PORTS), json.dumps(got)
    assert all(serials[0] == old and set(serials) == {old, new} for serials in got["seen"].values()), \
        json.dumps(got["seen"])
    assert set(got["last"].values()) == {new}, json.dumps(got)
    assert got["held"] == ["OK", 250], got["held"]
    assert mx.file("/etc/ssl/mailstack/host.crt").sha256sum != cert_before
    assert mx.file("/etc/ssl/private/mailstack.key").sha256sum == key_before
    assert "installed the certificate" in mx.run("journalctl -t mailstack-acme --no-pager").stdout
