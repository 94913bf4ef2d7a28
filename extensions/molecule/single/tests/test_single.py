"""The single-server topology, checked the way users meet it: real SMTP,
IMAP and POP3 clients on a host outside the mail system (outside1)."""

import json
import os
import time
import uuid

import pytest
import testinfra

import testlib
from testlib import client

testinfra_hosts = ["podman://outside1"]
# outside1 resolves names through ns1 only: the mail host is known by its
# name in the primary mail domain.
MX = "mx1.example.test"
# The scenario's mail domains (molecule.yml's mailstack_domains): the
# primary, and a second one whose MX is the same host, with its own DKIM
# selector, MTA-STS mode and users.
DOMAINS = ["example.test", "example.net"]


@pytest.fixture(scope="module")
def mx():
    return testinfra.get_host("podman://mx1")


def mx_by_lookup(host, domain="example.test"):
    """The domain's best MX, found the way an internet MTA finds it."""
    answers = sorted(line.split() for line in host.check_output("dig +short MX %s" % domain).splitlines())
    assert answers, "no MX for %s" % domain
    return answers[0][1].rstrip(".")


def maildir(user):
    """A user's Maildir: user is a local part of example.test, or an address."""
    local, _sep, domain = user.partition("@")
    return "/var/vmail/%s/%s/Maildir" % (domain or "example.test", local)


def maildir_count(mx, user):
    out = mx.run("find {0}/new {0}/cur -type f 2>/dev/null | wc -l".format(maildir(user)))
    return int(out.stdout.strip() or 0)


def wait_for_count(mx, user, want, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        n = maildir_count(mx, user)
        if n >= want:
            return n
        time.sleep(1)
    return maildir_count(mx, user)


def send_from_outside(host, rcpt, subject, body="hello from outside\n", sender="someone@outside.test"):
    """To the MX of the recipient's domain (of the primary's for a domain the
    lab's DNS does not serve: the relay domain, the outside)."""
    rcpt_domain = rcpt.rpartition("@")[2]
    mx = mx_by_lookup(host, rcpt_domain if rcpt_domain in DOMAINS else "example.test")
    return client(host, """
        s = smtplib.SMTP("{mx}", 25, timeout=30)
        s.ehlo("outside1.outside.test")
        try:
            refused = s.sendmail("{sender}", ["{rcpt}"], "From: {sender}\\r\\nTo: {rcpt}\\r\\nSubject: {subject}\\r\\n\\r\\n{body}")
            print(json.dumps({{"ok": True, "refused": {{k: [v[0], v[1].decode()] for k, v in refused.items()}}}}))
        except smtplib.SMTPRecipientsRefused as e:
            print(json.dumps({{"ok": False, "code": list(e.recipients.values())[0][0],
                              "msg": list(e.recipients.values())[0][1].decode()}}))
        except smtplib.SMTPResponseException as e:
            print(json.dumps({{"ok": False, "code": e.smtp_code, "msg": e.smtp_error.decode()}}))
        finally:
            s.close()
    """.format(mx=mx, rcpt=rcpt, subject=subject, body=body.replace("\n", "\\r\\n"), sender=sender))


@pytest.mark.parametrize("domain", DOMAINS)
def test_dns_mx_spf_dmarc_through_ns1(host, domain):
    # Each domain's zone on ns1: its MX is the host's name in the primary domain.
    assert host.check_output("dig +short MX %s" % domain) == "5 mx1.example.test."
    assert mx_by_lookup(host, domain) == MX
    assert host.check_output("dig +short A mx1.example.test")
    assert '"v=spf1 mx -all"' in host.check_output("dig +short TXT %s" % domain)
    # The policy the inventory chose (mailstack_dmarc_policy), reports to the domain's postmaster.
    assert host.check_output("dig +short TXT _dmarc.%s" % domain) == \
        '"v=DMARC1; p=reject; rua=mailto:postmaster@%s"' % domain
    assert host.check_output("dig +short NS %s" % domain) == "ns1.example.test."
    # Authoritative only: no recursion for other names.
    assert "REFUSED" in host.run("dig +time=2 +tries=1 example.org").stdout


def test_services_listen(mx):
    for port in (25, 587, 465, 143, 993, 110, 995):
        assert mx.socket("tcp://0.0.0.0:%d" % port).is_listening, port


def test_an_inventory_value_wins_over_the_wiring(mx):
    # molecule.yml sets postfix_content_filter_concurrency: 3 for mx1; the
    # wiring would have given the filter host's core count.
    fields = mx.check_output("postconf -M smtp-amavis/unix").split()
    assert fields[:8] == ["smtp-amavis", "unix", "-", "-", "n", "-", "3", "smtp"], fields


def test_mail_from_outside_reaches_the_maildir(host, mx):
    before = maildir_count(mx, "alice")
    subject = "inbound-" + uuid.uuid4().hex[:8]
    assert send_from_outside(host, "alice@example.test", subject)["ok"]
    assert wait_for_count(mx, "alice", before + 1) == before + 1
    files = mx.check_output("grep -l 'Subject: %s' -r /var/vmail/example.test/alice/Maildir/" % subject)
    assert files
    message = mx.file(files.splitlines()[0])
    assert message.user == "vmail"
    # Judged as the sender's DNS says: the lab's DNS refuses to answer for
    # outside.test, so it publishes no DMARC policy (OpenDMARC's own SPF
    # check counts the refused lookup as a fail, which weighs nothing
    # without a policy).
    headers = message.content_string.split("\n\n", 1)[0]
    assert "Authentication-Results: mx1.example.test; spf=fail smtp.mailfrom=outside.test" in headers, headers
    assert "Authentication-Results: mx1.example.test; dmarc=none (p=none dis=none) header.from=outside.test" \
        in headers, headers
    assert headers.count("Authentication-Results:") == 2, headers


@pytest.mark.parametrize("user, password", [("bob@example.test", "bob-lab-password"),
                                            ("dave@example.net", "dave-lab-password")])
def test_read_back_over_imaps_and_pop3s(host, mx, user, password):
    """Delivered from the internet by MX lookup of the user's domain, read
    back over IMAPS and POP3S: for a user of each domain."""
    subject = "read-me-" + uuid.uuid4().hex[:8]
    before = maildir_count(mx, user)
    assert send_from_outside(host, user, subject)["ok"]
    assert wait_for_count(mx, user, before + 1) == before + 1
    got = client(host, """
        i = imaplib.IMAP4_SSL("{mx}", 993, ssl_context=ctx)
        i.login("{user}", "{password}")
        i.select("INBOX")
        typ, data = i.search(None, 'SUBJECT "{subject}"')
        imap_hits = len(data[0].split())
        typ, data = i.search(None, 'ALL')
        imap_all = len(data[0].split())
        i.logout()
        p = poplib.POP3_SSL("{mx}", 995, context=ctx)
        p.user("{user}"); p.pass_("{password}")
        n, size = p.stat()
        top = b"\\n".join(p.top(n, 0)[1])
        p.quit()
        print(json.dumps({{"imap": imap_hits, "imap_all": imap_all, "pop": n, "subject": b"{subject}" in top}}))
    """.format(mx=MX, subject=subject, user=user, password=password))
    # The new message is there once; IMAP and POP3 see what the Maildir holds.
    assert got["imap"] == 1 and got["subject"], got
    assert got["imap_all"] == got["pop"] == maildir_count(mx, user), got


def test_alias_delivers_to_its_target(host, mx):
    before = maildir_count(mx, "alice")
    assert send_from_outside(host, "sales@example.test", "to-sales")["ok"]
    assert wait_for_count(mx, "alice", before + 1) == before + 1


def test_unknown_recipient_refused_at_rcpt(host):
    r = send_from_outside(host, "nobody@example.test", "unknown")
    assert not r["ok"] and r["code"] == 550, r


def test_no_open_relay(host):
    r = send_from_outside(host, "victim@elsewhere.test", "relay")
    assert not r["ok"] and r["code"] in (454, 554), r
    assert "Relay access denied" in r["msg"]


def test_no_auth_before_starttls_and_submission_works(host, mx):
    before = maildir_count(mx, "bob")
    got = client(host, """
        s = smtplib.SMTP("{mx}", 587, timeout=30)
        s.ehlo("outside1")
        auth_before = s.has_extn("auth")
        s.starttls(context=ctx)
        s.ehlo("outside1")
        auth_after = s.has_extn("auth")
        s.login("alice@example.test", "alice-lab-password")
        local = s.sendmail("alice@example.test", ["bob@example.test"],
                           "From: alice@example.test\\r\\nTo: bob@example.test\\r\\nSubject: from-alice\\r\\n\\r\\nhi\\r\\n")
        s.quit()
        print(json.dumps({{"before": auth_before, "after": auth_after, "refused": len(local)}}))
    """.format(mx=MX))
    assert got == {"before": False, "after": True, "refused": 0}
    assert wait_for_count(mx, "bob", before + 1) == before + 1


def test_submission_relays_to_outside_for_authenticated_users(host, mx):
    got = client(host, """
        s = smtplib.SMTP_SSL("{mx}", 465, timeout=30, context=ctx)
        s.login("alice@example.test", "alice-lab-password")
        refused = s.sendmail("alice@example.test", ["friend@outside.test"],
                             "From: alice@example.test\\r\\nTo: friend@outside.test\\r\\nSubject: out\\r\\n\\r\\nhi\\r\\n")
        s.quit()
        print(json.dumps(len(refused)))
    """.format(mx=MX))
    assert got == 0
    # Accepted for delivery to the outside: after the filter, mx1's smtp
    # client tries the outside domain (which the lab cannot reach).
    deadline = time.time() + 60
    while time.time() < deadline:
        log = mx.run("grep -h 'to=<friend@outside.test>' /var/log/mail.log").stdout
        if "postfix/smtp[" in log:
            break
        time.sleep(1)
    assert "postfix/smtp[" in log, log
    # The lab's DNS does not answer for outside.test, so the message would
    # wait in the queue for days: remove it (the benchmarks wait for an
    # empty queue).
    for line in mx.check_output("postqueue -j").splitlines():
        entry = json.loads(line)
        if any(r["address"] == "friend@outside.test" for r in entry["recipients"]):
            mx.check_output("postsuper -d %s" % entry["queue_id"])


def test_sending_as_another_user_is_refused(host):
    got = client(host, """
        s = smtplib.SMTP("{mx}", 587, timeout=30)
        s.starttls(context=ctx)
        s.login("alice@example.test", "alice-lab-password")
        try:
            s.sendmail("bob@example.test", ["bob@example.test"], "Subject: spoof\\r\\n\\r\\nx\\r\\n")
            print(json.dumps({{"ok": True}}))
        except smtplib.SMTPRecipientsRefused as e:
            v = list(e.recipients.values())[0]
            print(json.dumps({{"ok": False, "code": v[0], "msg": v[1].decode()}}))
        except smtplib.SMTPSenderRefused as e:
            print(json.dumps({{"ok": False, "code": e.smtp_code, "msg": e.smtp_error.decode()}}))
    """.format(mx=MX))
    assert not got["ok"] and got["code"] == 553, got
    assert "not owned by user" in got["msg"]


def test_plaintext_logins_refused(host):
    got = client(host, """
        out = {{}}
        i = imaplib.IMAP4("{mx}", 143)
        out["imap_capabilities"] = list(i.capabilities)
        try:
            i.login("alice@example.test", "alice-lab-password")
            out["imap"] = "accepted"
        except imaplib.IMAP4.error as e:
            out["imap"] = str(e)
        p = poplib.POP3("{mx}", 110)
        try:
            p.user("alice@example.test")
            p.pass_("alice-lab-password")
            out["pop"] = "accepted"
        except poplib.error_proto as e:
            out["pop"] = e.args[0].decode()
        print(json.dumps(out))
    """.format(mx=MX))
    # Dovecot refuses the password itself, before checking it.
    assert "LOGINDISABLED" in got["imap_capabilities"], got
    assert "[PRIVACYREQUIRED] Plaintext authentication disallowed" in got["imap"], got
    assert got["pop"].startswith("-ERR [AUTH] Plaintext authentication disallowed"), got


def test_wrong_password_refused_over_imaps(host):
    got = client(host, """
        i = imaplib.IMAP4_SSL("{mx}", 993, ssl_context=ctx)
        try:
            i.login("alice@example.test", "wrong")
            print(json.dumps("accepted"))
        except imaplib.IMAP4.error as e:
            print(json.dumps(str(e)))
    """.format(mx=MX))
    assert "AUTHENTICATIONFAILED" in got


def test_over_quota_delivery_refused(host, mx):
    big = "x" * 4000 + "\n"
    r = send_from_outside(host, "tiny@example.test", "too-big", body=big)
    assert not r["ok"] and r["code"] == 552, r
    assert maildir_count(mx, "tiny") == 0


def test_quota_status_is_asked_only_for_mailboxes_with_a_limit(mx):
    """Postfix's recipient_access table names the quota class (which asks
    quota-status) for tiny (2K) and for no one without a limit: alice's RCPT
    costs no quota-status request."""
    def lookup(address):
        return mx.run("postmap -q %s proxy:mysql:/etc/postfix/sql/recipient_access.cf" % address)
    assert lookup("tiny@example.test").stdout.strip() == "mailstack_quota"
    assert lookup("tiny+tag@example.test").rc == 1  # Postfix then looks up tiny@example.test
    alice = lookup("alice@example.test")
    assert (alice.rc, alice.stdout) == (1, ""), alice.stderr
    assert lookup("someone@legacy.example.test").stdout.strip() == \
        "reject_unverified_recipient, permit_auth_destination"
    assert mx.check_output("postconf -h mailstack_quota") == "check_policy_service inet:127.0.0.1:12340"


def test_tls_certificate_names_the_host(host):
    got = client(host, """
        import socket
        with socket.create_connection(("{mx}", 993), timeout=10) as raw:
            with ctx.wrap_socket(raw) as tls:
                der = tls.getpeercert(binary_form=True)
        import subprocess
        pem = ssl.DER_cert_to_PEM_cert(der)
        out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-ext", "subjectAltName"],
                             input=pem, capture_output=True, text=True).stdout
        print(json.dumps(out))
    """.format(mx=MX))
    assert "mx1.example.test" in got


def test_the_lab_ca_stays_on_its_host_and_signs_the_others():
    """The lab CA is kept on mx1 (the wiring's tls_ca_host), not on the
    controller, which an AWX job throws away; ns1's certificate, made for
    the database's readers, is signed by it."""
    mx1, ns1 = testinfra.get_host("podman://mx1"), testinfra.get_host("podman://ns1")
    key = mx1.file("/var/lib/mailstack/ca/ca.key")
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
    assert not ns1.file("/var/lib/mailstack/ca").exists
    ca = mx1.file("/var/lib/mailstack/ca/ca.crt").content_string
    assert ns1.file("/usr/local/share/ca-certificates/mailstack-ca.crt").content_string == ca
    verify = ns1.run("openssl verify -CAfile /usr/local/share/ca-certificates/mailstack-ca.crt "
                     "/etc/ssl/mailstack/host.crt")
    assert verify.rc == 0 and verify.stdout.strip().endswith(": OK"), verify.stdout + verify.stderr


EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def maildir_files(mx, user):
    out = mx.run("find /var/vmail/example.test/{0}/Maildir/new /var/vmail/example.test/{0}/Maildir/cur "
                 "-type f 2>/dev/null".format(user)).stdout
    return [line for line in out.splitlines() if line]


def test_eicar_is_quarantined_not_delivered(host, mx):
    filt = testinfra.get_host("podman://filter1")
    quarantined = "find /var/lib/amavis/virusmails -type f -name 'virus-*' | wc -l"
    before_q = int(filt.check_output(quarantined))
    before = maildir_count(mx, "alice")
    assert send_from_outside(host, "alice@example.test", "eicar", body=EICAR + "\n")["ok"]
    deadline = time.time() + 90
    while time.time() < deadline and int(filt.check_output(quarantined)) == before_q:
        time.sleep(1)
    assert int(filt.check_output(quarantined)) == before_q + 1
    assert "Blocked INFECTED (Mailstack-Lab-EICAR" in filt.check_output("grep -h 'Blocked INFECTED' /var/log/mail.log")
    assert maildir_count(mx, "alice") == before


def test_gtube_is_tagged_as_spam(host, mx):
    # Tagged by the filter, then filed into Junk by the global Sieve script
    # (test_sieve.py: and a normal message into the INBOX).
    junk = "/var/vmail/example.test/bob/Maildir/.Junk"
    count = "find {0}/new {0}/cur -type f 2>/dev/null | wc -l".format(junk)
    before = int(mx.check_output(count))
    subject = "buy-now-" + uuid.uuid4().hex[:8]
    assert send_from_outside(host, "bob@example.test", subject, body=GTUBE + "\n")["ok"]
    deadline = time.time() + 90
    while time.time() < deadline and int(mx.check_output(count)) == before:
        time.sleep(1)
    spam = mx.check_output("grep -l '%s' -r %s" % (subject, junk))
    content = mx.file(spam.splitlines()[0]).content_string
    assert "X-Spam-Flag: YES" in content
    assert "Subject: ***SPAM*** %s" % subject in content


def test_every_delivered_message_passed_the_filter_once(mx):
    files = maildir_files(mx, "alice") + maildir_files(mx, "bob")
    checked = 0
    for path in files:
        headers = mx.file(path).content_string.split("\n\n", 1)[0]
        if "with ESMTP" not in headers:
            # Not received over SMTP: Postfix's own delivery reports (here:
            # the lab cannot reach outside.test) are made on mx1 itself.
            continue
        scanned = [line for line in headers.splitlines() if line.startswith("X-Virus-Scanned:")]
        assert len(scanned) == 1, (path, scanned)
        assert "filter1" in scanned[0], scanned
        checked += 1
    assert checked >= 4


def test_roundcube_login_lists_the_inbox(host, mx):
    if maildir_count(mx, "bob") == 0:
        send_from_outside(host, "bob@example.test", "read-me")
        wait_for_count(mx, "bob", 1)
    got = client(host, """
        import http.cookiejar, re, urllib.error, urllib.parse, urllib.request
        base = "https://{mx}"
        def session():
            jar = http.cookiejar.CookieJar()
            return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar),
                                               urllib.request.HTTPSHandler(context=ctx))
        def login(opener, user, password):
            page = opener.open(base + "/?_task=login", timeout=30).read().decode()
            token = re.search(r'name="_token" value="([^"]+)"', page).group(1)
            form = urllib.parse.urlencode({{"_token": token, "_task": "login", "_action": "login",
                                            "_timezone": "UTC", "_url": "", "_user": user,
                                            "_pass": password}}).encode()
            try:
                resp = opener.open(base + "/?_task=login", form, timeout=30)
            except urllib.error.HTTPError as e:  # a failed login answers 401
                return "status %d" % e.code, ""
            return resp.geturl(), resp.read().decode()
        bad_url, bad_page = login(session(), "bob@example.test", "wrong-password")
        opener = session()
        url, page = login(opener, "bob@example.test", "bob-lab-password")
        token = re.search(r'"request_token":"([^"]+)"', page).group(1)
        req = urllib.request.Request(base + "/?_task=mail&_action=list&_mbox=INBOX&_remote=1",
                                     headers={{"X-Roundcube-Request": token}})
        listing = opener.open(req, timeout=30).read().decode()
        print(json.dumps({{"bad_logged_in": "_task=mail" in bad_url, "bad": bad_url, "url": url,
                          "has_read_me": "read-me" in listing}}))
    """.format(mx=MX))
    assert got["bad_logged_in"] is False and got["bad"] == "status 401", got
    assert "_task=mail" in got["url"], got
    assert got["has_read_me"], got


# --- the filter host is reached over IPv6 -----------------------------------

def test_mail_goes_to_the_filter_and_back_over_ipv6(host, mx):
    filt = testinfra.get_host("podman://filter1")
    filter6 = [a for a in filt.check_output("hostname -I").split() if ":" in a][0]
    mx6 = [a for a in mx.check_output("hostname -I").split() if ":" in a][0]
    assert mx.check_output("postconf -h content_filter") == "smtp-amavis:[%s]:10024" % filter6
    # amavisd-new sends each message back to the server it came from.
    assert "$forward_method = 'smtp:*:10025';" in filt.file("/etc/amavis/conf.d/50-mailstack").content_string
    subject = "v6-" + uuid.uuid4().hex[:8]
    before = maildir_count(mx, "alice")
    assert send_from_outside(host, "alice@example.test", subject)["ok"]
    assert wait_for_count(mx, "alice", before + 1, timeout=90) == before + 1
    handed = mx.check_output("grep -h 'relay=.*:10024' /var/log/mail.log")
    assert "[%s]:10024" % filter6 in handed, handed
    back = mx.check_output("grep -h 'postfix/reinject/smtpd.* connect from' /var/log/mail.log")
    assert "[%s]" % filter6 in back, back
    # The filter accepted the mail server's IPv6 address (the wiring listed
    # both of its addresses).
    acl = filt.check_output("grep -h '^@inet_acl' /etc/amavis/conf.d/50-mailstack")
    assert "[%s]" % mx6 in acl, acl


# --- a relay domain: accepted for the recipients its next hop confirms -------

def test_relay_domain_delivers_to_its_next_hop(host):
    subject = "relayed-" + uuid.uuid4().hex[:8]
    r = send_from_outside(host, "carol@legacy.example.test", subject)
    assert r["ok"] and r["refused"] == {}, r
    deadline = time.time() + 90
    mbox = ""
    while time.time() < deadline and subject not in mbox:
        time.sleep(1)
        mbox = host.run("cat /var/mail/carol").stdout
    assert "Subject: %s" % subject in mbox
    # Scanned once on the way, like all mail received.
    headers = mbox[mbox.rindex("From ", 0, mbox.index("Subject: %s" % subject)):]
    assert headers.count("X-Virus-Scanned:") == 1, headers


def test_relay_domain_refuses_recipients_its_next_hop_does_not_know(host):
    # The first probe of an address may still be running (450); the answer
    # that counts is the next hop's: unknown.
    deadline = time.time() + 60
    while True:
        r = send_from_outside(host, "nosuchuser@legacy.example.test", "unknown-relay")
        if r.get("code") != 450 or time.time() > deadline:
            break
        time.sleep(3)
    assert not r["ok"] and r["code"] == 550, r
    assert "Recipient address rejected: undeliverable address" in r["msg"], r


# --- DKIM: outgoing mail signed on mx1, checked by the internet host ----------

def carol_message(host, subject, timeout=90):
    """The message with this subject in carol's mbox on outside1, saved to
    /tmp/<subject>.eml there; its path, or None."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = client(host, """
            import mailbox, os
            # (mailbox.mbox would create a missing mbox, owned by root.)
            box = mailbox.mbox("/var/mail/carol") if os.path.exists("/var/mail/carol") else []
            for msg in box:
                if msg["Subject"] == "{subject}":
                    with open("/tmp/{subject}.eml", "wb") as f:
                        f.write(msg.as_bytes())
                    print(json.dumps("/tmp/{subject}.eml"))
                    break
            else:
                print(json.dumps(None))
        """.format(subject=subject))
        if found:
            return found
        time.sleep(1)
    return None


def dkim_verify(host, path, tamper=False):
    """dkimpy (not the signer) verifies the message, fetching the key from
    the lab's DNS: (verified, the selector and domain of its signature)."""
    return client(host, """
        import dkim, re
        data = open("{path}", "rb").read()
        if {tamper}:
            data = data.replace(b"signed body", b"changed body")
        sig = re.search(rb"^DKIM-Signature:(.*?)\\n(?![ \\t])", data, re.M | re.S)
        tags = dict(t.strip().split("=", 1) for t in re.sub(rb"\\s+", b"", sig.group(1)).decode().split(";")
                    if "=" in t) if sig else {{}}
        print(json.dumps([bool(dkim.verify(data)), tags.get("s"), tags.get("d")]))
    """.format(path=path, tamper=tamper))


def dmarc_result(host, path):
    """The receiver's DMARC verdict (RFC 7489, 4.2) on outside1, which did
    not sign: the From domain's policy record from the lab's DNS, and pass
    when the DKIM signature verifies (dkimpy) and its d= is aligned
    (relaxed) with the From domain. (The message reaches outside1 from mx1;
    alignment by DKIM alone.) {domain, policy, dmarc}."""
    got = client(host, """
        import email, subprocess
        msg = email.message_from_bytes(open("{path}", "rb").read())
        domain = email.utils.parseaddr(msg["From"])[1].rpartition("@")[2].lower()
        out = subprocess.run(["dig", "+short", "TXT", "_dmarc." + domain], capture_output=True, text=True).stdout
        record = "".join(out.strip().split('" "')).strip('"')
        tags = dict(t.strip().split("=", 1) for t in record.split(";") if "=" in t)
        print(json.dumps({{"domain": domain, "policy": tags.get("p"), "v": tags.get("v")}}))
    """.format(path=path))
    verified, _selector, signer = dkim_verify(host, path)
    aligned = signer is not None and (got["domain"] == signer.lower() or got["domain"].endswith("." + signer.lower()))
    return {"domain": got["domain"], "policy": got["policy"] if got["v"] == "DMARC1" else None,
            "dmarc": "pass" if verified and aligned else "fail"}


# A sender of each domain, and the selector mx1 signs that domain's mail with
# (molecule.yml: example.net's own, '{host}-net').
SIGNERS = [("alice@example.test", "alice-lab-password", "mx1-1"),
           ("dave@example.net", "dave-lab-password", "mx1-net")]


@pytest.mark.parametrize("sender, password, selector", SIGNERS)
def test_submitted_mail_is_dkim_signed_and_verifies_at_the_receiver(host, mx, sender, password, selector):
    domain = sender.partition("@")[2]
    subject = "dkim-" + uuid.uuid4().hex[:8]
    got = client(host, """
        s = smtplib.SMTP("{mx}", 587, timeout=30)
        s.starttls(context=ctx)
        s.login("{sender}", "{password}")
        refused = s.sendmail("{sender}", ["carol@legacy.example.test"],
                             "From: {sender}\\r\\nTo: carol@legacy.example.test\\r\\n"
                             "Subject: {subject}\\r\\n\\r\\nsigned body\\r\\n")
        s.quit()
        print(json.dumps(len(refused)))
    """.format(mx=MX, subject=subject, sender=sender, password=password))
    assert got == 0
    path = carol_message(host, subject)
    assert path, "the submitted message did not reach outside1"
    # Signed for the sender's domain by mx1's selector of that domain, whose
    # key ns1 publishes in that domain's zone.
    assert dkim_verify(host, path) == [True, selector, domain]
    # DMARC at the receiver: the domain's policy, passed by aligned DKIM.
    assert dmarc_result(host, path) == {"domain": domain, "policy": "reject", "dmarc": "pass"}
    # The check can fail: a changed body no longer verifies.
    assert dkim_verify(host, path, tamper=True)[0] is False


@pytest.mark.parametrize("domain, selector", [(s.partition("@")[2], sel) for s, _p, sel in SIGNERS])
def test_the_published_dkim_key_is_the_signing_hosts_own(host, mx, domain, selector):
    """A key per domain and selector, made on mx1, published in the domain's zone."""
    txt = host.check_output("dig +short TXT %s._domainkey.%s" % (selector, domain))
    published = "".join(part for part in txt.replace('" "', "").strip('"').split('"'))
    key = "".join(line for line in mx.check_output("cat /etc/opendkim/keys/%s/%s.pub" % (domain, selector))
                  .splitlines() if not line.startswith("-----"))
    assert published == "v=DKIM1; k=rsa; p=" + key
    # The private key stays readable by OpenDKIM alone.
    private = mx.file("/etc/opendkim/keys/%s/%s.private" % (domain, selector))
    assert private.user == "opendkim" and private.mode == 0o600


def test_each_domain_has_a_key_of_its_own(mx):
    keys = [mx.check_output("cat /etc/opendkim/keys/%s/%s.pub" % (s.partition("@")[2], sel)) for s, _p, sel in SIGNERS]
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("sender", [s for s, _p, _sel in SIGNERS])
def test_mail_from_outside_claiming_a_local_sender_is_refused_by_dmarc(host, mx, sender):
    # Each domain publishes p=reject, and outside1 is not in its SPF: the
    # spoof fails DMARC and is refused, not signed and relayed.
    domain = sender.partition("@")[2]
    subject = "spoof-" + uuid.uuid4().hex[:8]
    r = send_from_outside(host, "carol@legacy.example.test", subject, body="claims %s\n" % sender, sender=sender)
    assert not r["ok"] and r["code"] == 550, r
    assert "DMARC policy for %s" % domain in r["msg"], r
    assert carol_message(host, subject, timeout=5) is None


# --- hardening ----------------------------------------------------------------

def test_smtp_smuggling_delivers_one_message_not_two(host, mx):
    # <LF>.<CR><LF> inside DATA, then a second transaction as if the first
    # had ended: Postfix must read it all as one message's content.
    before = maildir_count(mx, "bob")
    tag = uuid.uuid4().hex[:8]
    got = client(host, """
        import socket
        s = socket.create_connection(("{mx}", 25), timeout=30)
        f = s.makefile("rb")
        def reply():
            lines = [f.readline()]
            while lines[-1][3:4] == b"-":
                lines.append(f.readline())
            return lines[-1].decode().strip()
        reply()
        for cmd in (b"EHLO outside1.outside.test", b"MAIL FROM:<someone@outside.test>",
                    b"RCPT TO:<bob@example.test>", b"DATA"):
            s.sendall(cmd + b"\\r\\n")
            reply()
        s.sendall(b"Subject: carrier-{tag}\\r\\n\\r\\nfirst\\n.\\r\\n"
                  b"MAIL FROM:<alice@example.test>\\r\\nRCPT TO:<bob@example.test>\\r\\nDATA\\r\\n"
                  b"Subject: smuggled-{tag}\\r\\n\\r\\nhidden\\r\\n.\\r\\n")
        answers = [reply()]
        s.sendall(b"QUIT\\r\\n")
        answers.append(reply())
        print(json.dumps(answers))
    """.format(mx=MX, tag=tag))
    assert got[0].startswith("250 "), got
    assert wait_for_count(mx, "bob", before + 1) == before + 1
    time.sleep(5)
    assert maildir_count(mx, "bob") == before + 1
    files = mx.check_output("grep -rls -e 'carrier-%s' -e 'smuggled-%s' /var/vmail/example.test/bob/Maildir/new "
                            "/var/vmail/example.test/bob/Maildir/cur" % (tag, tag)).splitlines()
    # The smuggled lines are the carrier's body, not a message of their own.
    assert len(files) == 1, files
    assert "hidden" in mx.file(files[0]).content_string


def test_reinjection_refuses_other_clients_as_they_connect(host):
    got = client(host, """
        try:
            s = smtplib.SMTP("{mx}", 10025, timeout=30)
            print(json.dumps(["greeted", s.ehlo("outside1.outside.test")[0]]))
        except smtplib.SMTPConnectError as e:
            print(json.dumps([e.smtp_code, e.smtp_error.decode()]))
    """.format(mx=MX))
    assert got[0] == 554 and "Client host rejected" in got[1], got


# --- MTA-STS and TLS reporting ---------------------------------------------

@pytest.mark.parametrize("domain, mode", [("example.test", "enforce"), ("example.net", "testing")])
def test_the_mta_sts_policy_is_served_over_https_and_matches_the_records(host, domain, mode):
    """A sender's view (RFC 8461), for each domain: the _mta-sts id, the
    policy fetched over HTTPS with a verified certificate for
    mta-sts.<domain>, its mode the domain's (molecule.yml), its mx lines the
    domain's MX names, and the MX's certificate valid for that name."""
    # mx1's certificate is by ACME: the root of the lab's ACME server.
    with open(os.path.join(testlib.state_dir("single"), "acme", "root.pem")) as f:
        ca = f.read()
    got = client(host, """
        import hashlib, http.client, subprocess
        def txt(name):
            out = subprocess.run(["dig", "+short", "TXT", name], capture_output=True, text=True).stdout
            return [line.strip().replace('" "', "").strip('"') for line in out.splitlines()]
        verify = ssl.create_default_context(cadata={ca!r})
        conn = http.client.HTTPSConnection("mta-sts.{domain}", 443, context=verify, timeout=30)
        conn.request("GET", "/.well-known/mta-sts.txt")
        resp = conn.getresponse()
        policy = resp.read().decode()
        conn.request("GET", "/")
        other = conn.getresponse()
        other.read()
        mx_names = sorted(line.split()[1].rstrip(".") for line in subprocess.run(
            ["dig", "+short", "MX", "{domain}"], capture_output=True, text=True).stdout.splitlines())
        # What an enforcing sender does: STARTTLS to each MX, verified by name.
        verified = []
        for name in mx_names:
            with smtplib.SMTP(name, 25, timeout=30) as s:
                s.starttls(context=verify)
                verified.append(s.sock.server_hostname)
        print(json.dumps({{"status": resp.status, "type": resp.getheader("Content-Type"), "policy": policy,
                          "sha": hashlib.sha256(policy.encode()).hexdigest()[:32], "other": other.status,
                          "sts": txt("_mta-sts.{domain}"), "rpt": txt("_smtp._tls.{domain}"),
                          "mx": mx_names, "verified": verified}}))
    """.format(ca=ca, domain=domain))
    assert got["status"] == 200 and got["type"].split(";")[0] == "text/plain", got
    assert got["other"] == 404, got
    lines = got["policy"].split("\r\n")
    assert lines[0] == "version: STSv1" and lines[-1] == "", got["policy"]
    fields = [line.split(": ", 1) for line in lines[1:-1]]
    assert ["mode", mode] in fields and ["max_age", "604800"] in fields, fields
    assert sorted(v for k, v in fields if k == "mx") == got["mx"] == ["mx1.example.test"], got
    assert got["sts"] == ["v=STSv1; id=%s" % got["sha"]], got
    assert got["rpt"] == ["v=TLSRPTv1; rua=mailto:postmaster@%s" % domain], got
    assert got["verified"] == got["mx"], got


def test_the_report_shows_queue_dovecot_storage_and_certificates(mx):
    report, out = testlib.report("single")
    m = report["hosts"]["mx1"]["mailstack"]
    assert m["postfix"]["running"] and set(m["postfix"]["queues"]) >= {"active", "deferred", "hold"}, m
    assert m["dovecot"]["running"] and m["dovecot"]["processes"].get("master") == 1, m["dovecot"]
    mailboxes = len(mx.check_output("ls -d /var/vmail/*/*/").split())
    assert m["storage"]["mail"]["mailboxes"] == mailboxes and m["storage"]["mail"]["bytes"] > 0, m["storage"]
    assert 0 < m["storage"]["file_system"]["bytes_used_percent"] < 100
    assert [c["path"] for c in m["certificates"]] == ["/etc/ssl/mailstack/host.crt"]
    # By ACME: the lab's pebble issues for ten days.
    assert 0 < m["certificates"][0]["days_left"] <= 10 and "mx1.example.test" in m["certificates"][0]["subject"]
    assert report["hosts"]["ns1"]["mailstack"]["database"]["role"] == "primary"
    assert "outside1" not in report["hosts"]
    assert "mx1: queue %d (deferred %d" % (m["postfix"]["messages"], m["postfix"]["queues"]["deferred"]) in out
