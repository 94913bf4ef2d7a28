"""End the Dovecot sessions of the users named on the command line on this
server: its own (doveadm kick) and those it proxies to another server
(doveadm proxy kick). A user with no session is not an error (doveadm exits
68, "not found", then). Prints one JSON object: the users with a session
ended."""
import json
import subprocess
import sys

NOT_FOUND = 68
kicked = []
for user in sys.argv[1:]:
    for command in (["doveadm", "kick", user], ["doveadm", "proxy", "kick", user]):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode not in (0, NOT_FOUND):
            sys.exit("%s: exit %d: %s" % (" ".join(command), result.returncode, result.stderr.strip()))
        if result.returncode == 0 and result.stdout.strip():
            kicked.append(user)
print(json.dumps({"kicked": sorted(set(kicked))}))
