"""Sieve at delivery, ManageSieve and quota warnings (docs/sieve.md), the way
users meet them: a script uploaded over ManageSieve from the internet host
(outside1), mail sent from there, the vacation replies read in carol's mbox
there (carol+TAG@legacy.example.test is carol's: molecule.yml), each message
counted by its Message-ID."""

import time
import uuid

import pytest
import testinfra

import testlib
from testlib import client

testinfra_hosts = ["podman://outside1"]
MX = "mx1.example.test"
AWAY = ("away@example.test", "away-lab-password")
AWAY_MAILDIR = "/var/vmail/example.test/away/Maildir"
NEARFULL_MAILDIR = "/var/vmail/example.test/nearfull/Maildir"
# A run of its own: the vacation's "once per sender" memory outlives a
# verify run, so each run's senders are new.
RUN = uuid.uuid4().hex[:6]

VACATION_SCRIPT = """require ["fileinto", "mailbox", "vacation"];
if header :contains "Subject" "[file-me]" {
  fileinto :create "Filed";
  stop;
}
vacation :days 1 :subject "Away until Monday" "I am away; your message will be read on Monday.";
"""


@pytest.fixture(scope="module")
def mx():
    return testinfra.get_host("podman://mx1")


def managesieve(host, user, password, commands, starttls=True):
    """A ManageSieve session (RFC 5804) from host to mx1:4190, in raw
    protocol: the greeting's capabilities, STARTTLS (when asked), then
    AUTHENTICATE PLAIN and each command (a script's text goes as a literal).
    The replies, as [first line of the reply ending it, ...]."""
    return client(host, """
        import base64, socket
        sock = socket.create_connection(("{mx}", 4190), timeout=30)
        f = sock.makefile("rb")
        def response():
            lines = []
            while True:
                line = f.readline().decode().rstrip("\\r\\n")
                lines.append(line)
                if line.split(" ", 1)[0] in ("OK", "NO", "BYE") or not line:
                    return lines
        def send(data):
            sock.sendall(data.encode() if isinstance(data, str) else data)
            return response()
        out = {{"greeting": response()}}
        if {starttls}:
            out["starttls"] = send("STARTTLS\\r\\n")[-1]
            sock = ctx.wrap_socket(sock, server_hostname="{mx}")
            f = sock.makefile("rb")
            out["capabilities"] = response()
        plain = base64.b64encode(b"\\0{user}\\0{password}").decode()
        out["auth"] = send('AUTHENTICATE "PLAIN" "%s"\\r\\n' % plain)[-1]
        out["replies"] = []
        for command in {commands!r}:
            if isinstance(command, list):
                name, script = command
                data = script.encode()
                out["replies"].append(send(b'PUTSCRIPT "%s" {{%d+}}\\r\\n' % (name.encode(), len(data)) + data
                                           + b"\\r\\n")[-1])
            else:
                out["replies"].append(send(command + "\\r\\n"))
        sock.close()
        print(json.dumps(out))
    """.format(mx=MX, user=user, password=password, commands=commands, starttls=starttls))


def send(host, rcpt, sender, subject, headers=(), body="hello\n"):
    """One message from outside1 to mx1 (its MX), envelope sender `sender`,
    From someone@outside.test (a domain without DMARC: the envelope sender's
    legacy.example.test is a subdomain of a p=reject domain); its Message-ID."""
    message_id = "<%s.%s@outside1.outside.test>" % (subject, uuid.uuid4().hex[:12])
    head = ["From: Someone <someone@outside.test>", "To: %s" % rcpt, "Subject: %s" % subject,
            "Message-ID: %s" % message_id, "Date: " + time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())]
    got = client(host, """
        s = smtplib.SMTP("{mx}", 25, timeout=30)
        s.ehlo("outside1.outside.test")
        refused = s.sendmail({sender!r}, [{rcpt!r}], {text!r})
        s.quit()
        print(json.dumps(len(refused)))
    """.format(mx=MX, sender=sender, rcpt=rcpt,
               text="\r\n".join(head + list(headers)) + "\r\n\r\n" + body.replace("\n", "\r\n")))
    assert got == 0
    return message_id


def wait_for_ids(mx, maildir, ids, timeout=90):
    """Waits until each Message-ID is in the maildir (INBOX, or the folder
    path given); the Counter of its Message-IDs."""
    deadline = time.time() + timeout
    while True:
        found = testlib.maildir_ids(mx, maildir)
        if all(found[i] for i in ids) or time.time() > deadline:
            return found
        time.sleep(1)


def replies_to(host, message_ids):
    """The messages in carol's mbox on outside1 that answer each Message-ID
    (In-Reply-To): {id: [{return_path, to, subject, auto_submitted, path}]},
    each saved to /tmp for a DKIM check."""
    return client(host, """
        import mailbox, os
        out = {{i: [] for i in {ids!r}}}
        box = mailbox.mbox("/var/mail/carol") if os.path.exists("/var/mail/carol") else []
        for n, msg in enumerate(box):
            irt = msg["In-Reply-To"]
            if irt in out:
                path = "/tmp/reply-%d.eml" % n
                with open(path, "wb") as f:
                    f.write(msg.as_bytes())
                out[irt].append({{"return_path": msg["Return-Path"], "to": msg["To"], "from": msg["From"],
                                 "subject": msg["Subject"], "auto_submitted": msg["Auto-Submitted"],
                                 "path": path}})
        print(json.dumps(out))
    """.format(ids=list(message_ids)))


def wait_for_reply(host, message_id, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = replies_to(host, [message_id])[message_id]
        if got:
            return got
        time.sleep(1)
    return []


def verify_senders(host, addresses):
    """mx1 accepts a relay domain's recipient once its next hop (outside1)
    confirmed it (a cached probe; the first RCPT may answer 450 while it
    runs): asked here first, so that Dovecot's replies to these senders are
    not deferred."""
    got = client(host, """
        s = smtplib.SMTP("{mx}", 25, timeout=30)
        s.ehlo("outside1.outside.test")
        codes = {{}}
        deadline = time.time() + 60
        for address in {addresses!r}:
            while True:
                s.mail("someone@outside.test")
                code = s.rcpt(address)[0]
                s.rset()
                if code != 450 or time.time() > deadline:
                    break
                time.sleep(2)
            codes[address] = code
        s.quit()
        print(json.dumps(codes))
    """.format(mx=MX, addresses=addresses))
    assert set(got.values()) == {250}, got


# --- ManageSieve ----------------------------------------------------------------

def test_managesieve_refuses_a_login_before_starttls(host):
    got = managesieve(host, *AWAY, commands=[], starttls=False)
    greeting = "\n".join(got["greeting"])
    assert '"STARTTLS"' in greeting and '"SASL" ""' in greeting, got
    assert got["auth"].startswith("NO"), got


@pytest.fixture(scope="module")
def vacation_script(host):
    """away's vacation script, uploaded over ManageSieve (STARTTLS) and made active."""
    got = managesieve(host, *AWAY, commands=[["vacation", VACATION_SCRIPT], 'SETACTIVE "vacation"', "LISTSCRIPTS"])
    assert got["starttls"].startswith("OK"), got
    assert any('"SASL" "PLAIN' in line for line in got["capabilities"]), got
    assert got["auth"].startswith("OK"), got
    return got


def test_a_script_uploaded_over_managesieve_is_active(vacation_script, mx):
    put, active, listing = vacation_script["replies"]
    assert put.startswith("OK") and active[-1].startswith("OK"), vacation_script
    assert listing[:-1] == ['"vacation" ACTIVE'], listing
    assert mx.file("/var/vmail/example.test/away/.dovecot.sieve").linked_to.endswith("sieve/vacation.sieve")


def test_the_uploaded_script_files_a_message_into_a_folder(host, mx, vacation_script):
    filed = send(host, AWAY[0], "carol+filed-%s@legacy.example.test" % RUN, "[file-me]-%s" % RUN)
    assert wait_for_ids(mx, AWAY_MAILDIR + "/.Filed", [filed])[filed] == 1
    assert testlib.maildir_ids(mx, AWAY_MAILDIR)[filed] == 0


# --- vacation ---------------------------------------------------------------

# How long the first reply took to reach outside1: a reply that was not
# sent is waited for this long (and 10 s more).
REPLY_LATENCY = []


@pytest.fixture(scope="module")
def first_reply(host, mx, vacation_script):
    """A message to away from a new sender, and the vacation reply it got."""
    sender = "carol+twice-%s@legacy.example.test" % RUN
    verify_senders(host, [sender])
    start = time.time()
    first = send(host, AWAY[0], sender, "first-%s" % RUN)
    replies = wait_for_reply(host, first)
    REPLY_LATENCY.append(time.time() - start)
    return sender, first, replies


def test_a_vacation_reply_reaches_the_sender_once_for_two_messages(host, mx, first_reply):
    sender, first, replies = first_reply
    assert len(replies) == 1, replies
    reply = replies[0]
    # RFC 3834: sent with an empty envelope sender (Postfix's local
    # delivery on outside1 writes it as Return-Path), marked auto-replied,
    # from the user, to the envelope sender.
    assert reply["return_path"] == "<>", reply
    assert reply["auto_submitted"].startswith("auto-replied"), reply
    assert reply["subject"] == "Away until Monday" and AWAY[0] in reply["from"], reply
    assert sender in reply["to"], reply
    second = send(host, AWAY[0], sender, "second-%s" % RUN)
    assert wait_for_ids(mx, AWAY_MAILDIR, [second])[second] == 1
    time.sleep(REPLY_LATENCY[0] + 10)
    got = replies_to(host, [first, second])
    assert (len(got[first]), len(got[second])) == (1, 0), got


def test_the_vacation_reply_is_dkim_signed_and_verifies_at_the_sender(host, first_reply):
    """The reply left through mx1's outbound path: signed for example.test
    by mx1's selector, verified on outside1 by dkimpy against the lab's DNS."""
    _sender, _first, replies = first_reply
    assert replies, "no vacation reply"
    got = client(host, """
        import dkim, re
        data = open("{path}", "rb").read()
        sig = re.search(rb"^DKIM-Signature:(.*?)\\n(?![ \\t])", data, re.M | re.S)
        tags = dict(t.strip().split("=", 1) for t in re.sub(rb"\\s+", b"", sig.group(1)).decode().split(";")
                    if "=" in t) if sig else {{}}
        print(json.dumps([bool(dkim.verify(data)), tags.get("d"), tags.get("s"),
                          data.count(b"X-Virus-Scanned:")]))
    """.format(path=replies[0]["path"]))
    # Signed, and scanned once on its way out like the users' own mail.
    assert got == [True, "example.test", "mx1-1", 1], got


NO_REPLY = [("list", "List-Id: Friends <friends.outside.test>"),
            ("bulk", "Precedence: bulk"),
            ("auto", "Auto-Submitted: auto-generated")]


@pytest.fixture(scope="module")
def unanswered(host, mx, first_reply):
    """A message to away for each kind of mail a vacation must not answer,
    each from a sender of its own (so no earlier reply hides a new one),
    delivered; then as long as a reply took, and 10 s more."""
    senders = {kind: "carol+%s-%s@legacy.example.test" % (kind, RUN) for kind, _header in NO_REPLY}
    verify_senders(host, list(senders.values()))
    ids = {kind: send(host, AWAY[0], senders[kind], "%s-%s" % (kind, RUN), headers=[header])
           for kind, header in NO_REPLY}
    found = wait_for_ids(mx, AWAY_MAILDIR, list(ids.values()))
    assert all(found[i] == 1 for i in ids.values()), found
    time.sleep((REPLY_LATENCY or [30])[0] + 10)
    return ids, replies_to(host, list(ids.values()))


@pytest.mark.parametrize("kind", [kind for kind, _header in NO_REPLY])
def test_no_vacation_reply_to_lists_bulk_or_automatic_mail(mx, unanswered, kind):
    ids, replies = unanswered
    assert replies[ids[kind]] == [], replies[ids[kind]]
    # Pigeonhole says why.
    log = mx.check_output("grep -h 'msgid=%s: vacation action: discarding' /var/log/mail.log || true" % ids[kind])
    assert "discarding vacation response" in log, log


# --- spam into Junk ----------------------------------------------------------

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def test_spam_lands_in_junk_and_other_mail_in_the_inbox(host, mx):
    """The global script files what the content filter marked as spam into
    Junk; a normal message from the same sender stays in the INBOX."""
    bob = "/var/vmail/example.test/bob/Maildir"
    sender = "carol+spam-%s@legacy.example.test" % RUN
    spam = send(host, "bob@example.test", sender, "buy-now-%s" % RUN, body=GTUBE + "\n")
    ham = send(host, "bob@example.test", sender, "hello-%s" % RUN)
    junk = wait_for_ids(mx, bob + "/.Junk", [spam])
    inbox = wait_for_ids(mx, bob, [ham])
    assert (junk[spam], junk[ham], inbox[spam], inbox[ham]) == (1, 0, 0, 1), (junk, inbox)
    flagged = mx.check_output("grep -l -F %s -r %s/.Junk" % (spam.strip("<>"), bob)).splitlines()
    assert "X-Spam-Flag: YES" in mx.file(flagged[0]).content_string


# --- quota warnings -------------------------------------------------------------

def test_a_user_near_the_quota_is_warned_once_at_80_percent(host, mx):
    """nearfull has 100K: a message that takes the mailbox past 80 % (to
    about 86 %) brings one warning from the postmaster; the next, still
    under 95 %, none."""
    # From empty (a verify run before this one filled it).
    mx.run("doveadm expunge -u nearfull@example.test mailbox '*' all")
    mx.check_output("doveadm quota recalc -u nearfull@example.test")
    sender = "carol+quota-%s@legacy.example.test" % RUN
    big = send(host, "nearfull@example.test", sender, "big-%s" % RUN, body=("x" * 76 + "\n") * 1100)
    assert wait_for_ids(mx, NEARFULL_MAILDIR, [big])[big] == 1
    small = send(host, "nearfull@example.test", sender, "small-%s" % RUN, body=("y" * 76 + "\n") * 25)
    assert wait_for_ids(mx, NEARFULL_MAILDIR, [small])[small] == 1
    # The warning of the first is delivered as it is saved; give a second
    # one (which must not come) a moment.
    time.sleep(3)
    found = testlib.maildir_ids(mx, NEARFULL_MAILDIR)
    warnings = sorted(i for i in found.elements() if i and i.startswith("<quota-warning-"))
    assert [w.split(".")[0] for w in warnings] == ["<quota-warning-80"], (warnings, found)
    storage = [line.split() for line in mx.check_output("doveadm quota get -u nearfull@example.test").splitlines()
               if " STORAGE " in line]
    assert 80 <= int(storage[0][-1]) < 95, storage
