"""A new certificate from any source reaches every service that serves it
(issue 26 item 4): the tls role's handler runs mailstack-tls-reload after a
lab_ca or provided certificate or key changes (tests/unit/test_tls_reload.py
checks that every write notifies it; certbot's deploy hook calls it too).
Here, on proxy1 (lab_ca), a certificate replaced on disk and the script run:
Dovecot (IMAPS, POP3S) and nginx (HTTPS) serve the new one at once, and the
old one again after it is put back. Runs last: the other tests see proxy1's
certificate as converge left it.

proxy1 is also a node of the mail database's Galera cluster: MariaDB is not
among the units the script reloads (the mail_database role runs FLUSH SSL
when the files change), so the server and the Galera provider keep the
certificate they loaded through this test, and the cluster is not touched.
(FLUSH SSL reloads the provider's socket.ssl context too where wsrep is on:
seen on the controller with 10.11.19 and galera 26.4.23, one node with the
role's configuration - its group port served the old certificate after
the files were replaced, the new one after FLUSH SSL; MariaDB's test
galera_3nodes.galera_ssl_reload does the same. Not checked in this lab.)"""

import time

import testinfra

from testlib import client

testinfra_hosts = ["podman://outside1"]
CERT = "/etc/ssl/mailstack/host.crt"
DIGEST = "openssl x509 -in %s -outform DER | sha256sum | cut -c1-16" % CERT
# What clients reach on proxy1: IMAPS, POP3S, HTTPS.
PORTS = [("imap.example.test", 993), ("pop3.example.test", 995), ("webmail.example.test", 443)]


def served(host):
    """The digest of the certificate each port serves (not verified: the
    probe certificate is self-signed)."""
    return client(host, """
        import hashlib, socket
        out = []
        for name, port in {ports!r}:
            sock = ctx.wrap_socket(socket.create_connection((name, port), timeout=10), server_hostname=name)
            out.append(hashlib.sha256(sock.getpeercert(binary_form=True)).hexdigest()[:16])
            sock.close()
        print(json.dumps(out))
    """.format(ports=PORTS))


def wait_served(host, digest, seconds=10):
    deadline = time.time() + seconds
    got = served(host)
    while time.time() < deadline and set(got) != {digest}:
        time.sleep(0.5)
        got = served(host)
    return got


def test_the_reload_script_makes_dovecot_and_nginx_serve_a_new_certificate(host):
    proxy = testinfra.get_host("podman://proxy1")
    old = proxy.check_output(DIGEST)
    assert set(served(host)) == {old}
    proxy.check_output("cp -p %s /root/mailstack-host.crt.keep" % CERT)
    try:
        proxy.check_output("openssl req -x509 -key /etc/ssl/private/mailstack.key -days 1 -subj /CN=reload-probe "
                           "-out %s.new && mv %s.new %s" % (CERT, CERT, CERT))
        new = proxy.check_output(DIGEST)
        assert new != old
        # Without the reload the services keep the old one.
        assert set(served(host)) == {old}
        proxy.check_output("/usr/local/sbin/mailstack-tls-reload")
        assert wait_served(host, new) == [new] * len(PORTS)
    finally:
        proxy.check_output("cp -p /root/mailstack-host.crt.keep %s && /usr/local/sbin/mailstack-tls-reload" % CERT)
    assert wait_served(host, old) == [old] * len(PORTS)
