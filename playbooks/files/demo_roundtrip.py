"""Send one message to a user by MX lookup and read it back over IMAPS.

Usage: demo_roundtrip.py DOMAIN ADDRESS (password in $DEMO_PASSWORD).
Runs on the lab's internet host, with the system resolver pointing at the
mail domain's name server.
"""
import imaplib
import os
import smtplib
import ssl
import subprocess
import sys
import time
import uuid

domain, address = sys.argv[1], sys.argv[2]
password = os.environ["DEMO_PASSWORD"]
mx = sorted(line.split() for line in subprocess.run(
    ["dig", "+short", "MX", domain], capture_output=True, text=True, check=True).stdout.splitlines())[0][1].rstrip(".")
print("MX of %s: %s" % (domain, mx))
token = uuid.uuid4().hex[:12]
with smtplib.SMTP(mx, 25, timeout=30) as smtp:
    smtp.ehlo("outside1.outside.test")
    smtp.sendmail("visitor@outside.test", [address],
                  "From: visitor@outside.test\r\nTo: %s\r\nSubject: mailstack demo %s\r\n\r\nHello from outside.\r\n"
                  % (address, token))
print("sent 'mailstack demo %s' to %s through %s:25" % (token, address, mx))
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE  # the lab CA is not in this host's trust store
deadline = time.time() + 120
while True:
    imap = imaplib.IMAP4_SSL(mx, 993, ssl_context=ctx)
    imap.login(address, password)
    imap.select("INBOX", readonly=True)
    hits = imap.search(None, 'SUBJECT "%s"' % token)[1][0].split()
    if hits:
        headers = imap.fetch(hits[0], "(BODY.PEEK[HEADER.FIELDS (SUBJECT X-VIRUS-SCANNED)])")[1][0][1].decode()
        imap.logout()
        break
    imap.logout()
    if time.time() > deadline:
        sys.exit("the message did not arrive within 120 s")
    time.sleep(2)
print("read back over IMAPS from %s:993 as %s:" % (mx, address))
for line in headers.strip().splitlines():
    print("  " + line)
