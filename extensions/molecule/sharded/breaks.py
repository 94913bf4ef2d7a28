"""Breaks the hold's guards on a converged sharded lab, to see its tests red:
python3 extensions/molecule/sharded/breaks.py WHAT on|off (off puts back what on
changed; each edit of a rendered file is followed by the service's reload).

WHAT, and the test of test_sharded_hold.py that must then fail:
  retry        the SMTP tier's held transport back to retry:4.2.1 (450 at RCPT):
               held mail accepted and queued
  delay        the shards' login delay back to 3 s instead of the hold's end:
               a login at either shard waits for the hold's end
  proxy_maybe  the shards proxy LMTP only, not IMAP/POP3: a late login at the
               old shard is served by the new one
  lmtp         the shards' LMTP accepts RCPT for a held user (no 451): a hold
               nobody releases
"""

import subprocess
import sys

SHARDS = ("ms1", "ms2")
SQL_CONF = "/etc/dovecot/dovecot-sql.conf.ext"
# WHAT: (hosts, file, [(the rendered text, its broken form), ...], the reload)
EDITS = {
    "retry": (("smtp1", "smtp2"), "/etc/postfix/sql/shard_transports.cf",
              [("'held:unix:/nonexistent/mailstack-held'",
                "'retry:4.2.1 this mailbox is being moved, try again later'")], "postfix reload"),
    "delay": (SHARDS, SQL_CONF, [("UNIX_TIMESTAMP(m.hold_until), NULL) AS delay_until",
                                  "UNIX_TIMESTAMP() + 3, NULL) AS delay_until")], "doveadm reload"),
    "proxy_maybe": (SHARDS, SQL_CONF, [("IF('%s' IN ('imap', 'pop3', 'lmtp'), IF(h.address",
                                        "IF('%s' = 'lmtp', IF(h.address"),
                                       ("IF('%s' IN ('imap', 'pop3', 'lmtp'), h.address",
                                        "IF('%s' = 'lmtp', h.address")], "doveadm reload"),
    "lmtp": (SHARDS, SQL_CONF, [("m.hold_until > NOW() AND '%s' = 'lmtp'", "FALSE AND '%s' = 'lmtp'")],
             "doveadm reload"),
}


def edit(host, path, pairs, reload):
    """Replace each pair's first by its second in host's path (which must
    hold each first), then reload."""
    text = subprocess.run(["podman", "exec", host, "cat", path], check=True, capture_output=True,
                          text=True).stdout
    for old, new in pairs:
        if old not in text:
            sys.exit("%s: %s does not contain %r (already in that state, or the template changed)"
                     % (host, path, old))
        print(host, path, text.count(old), "replaced")
        text = text.replace(old, new)
    subprocess.run(["podman", "exec", "-i", host, "sh", "-c", "cat > %s" % path], input=text, check=True,
                   text=True)
    subprocess.run(["podman", "exec", host, "sh", "-c", reload], check=True)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in EDITS or sys.argv[2] not in ("on", "off"):
        sys.exit(__doc__)
    hosts, path, pairs, reload = EDITS[sys.argv[1]]
    if sys.argv[2] == "off":
        pairs = [(bad, good) for good, bad in pairs]
    for host in hosts:
        edit(host, path, pairs, reload)


if __name__ == "__main__":
    main()
