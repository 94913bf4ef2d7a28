"""End the sessions of the users named in a file (one address a line) on
this mail server, and prove they are gone: each pass lists every session
once (doveadm who, doveadm proxy list) and every delivery in progress
(Postfix's active queue), kicks the users found (doveadm kick, doveadm
proxy kick: one doveadm run per session found, none per user without one),
and the script ends when a pass finds nothing for them. It fails, naming
what it still finds, when WAIT seconds pass first, or when a doveadm
command fails. Prints one JSON object: clear, kicked, passes, seconds.

usage: repin_sessions.py USERS_FILE WAIT"""
import json
import subprocess
import sys
import time

NOT_FOUND = 68  # doveadm: no such session (ended meanwhile)


def users_in(text, users):
    """The users of the set users that head a line of doveadm's tab output
    (its header line, "username ...", never matches an address)."""
    found = set()
    for line in text.splitlines():
        name = line.split("\t", 1)[0].strip().lower()
        if name in users:
            found.add(name)
    return found


def deliveries(text, users):
    """The users with a message in Postfix's active queue (postqueue -j)."""
    found = set()
    for line in text.splitlines():
        entry = json.loads(line)
        if entry.get("queue_name") != "active":
            continue
        found.update(r.get("address", "").lower() for r in entry.get("recipients", []))
    return found & users


def run(command):
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode not in (0, NOT_FOUND):
        raise RuntimeError("%s: exit %d: %s" % (" ".join(command), result.returncode,
                                                (result.stderr or result.stdout).strip()))
    return result.stdout


def one_pass(users, kicked):
    """Kicks what it finds; returns {kind: users found}."""
    found = {"sessions": users_in(run(["doveadm", "-f", "tab", "who", "-1"]), users),
             "proxied": users_in(run(["doveadm", "-f", "tab", "proxy", "list"]), users),
             "deliveries": deliveries(run(["postqueue", "-j"]), users)}
    for user in sorted(found["sessions"]):
        run(["doveadm", "kick", user])
    for user in sorted(found["proxied"]):
        run(["doveadm", "proxy", "kick", user])
    kicked.update(found["sessions"] | found["proxied"])
    return found


def main(path, wait):
    with open(path) as f:
        users = set(line.strip().lower() for line in f if line.strip())
    start, kicked, passes = time.time(), set(), 0
    while True:
        passes += 1
        try:
            found = one_pass(users, kicked)
        except RuntimeError as e:
            return {"clear": False, "msg": str(e), "kicked": sorted(kicked), "passes": passes}
        if not any(found.values()):
            return {"clear": True, "kicked": sorted(kicked), "passes": passes,
                    "seconds": round(time.time() - start, 1)}
        if time.time() - start > wait:
            still = dict((kind, sorted(v)[:10]) for kind, v in found.items() if v)
            return {"clear": False, "msg": "after %d s still: %s" % (wait, json.dumps(still)),
                    "kicked": sorted(kicked), "passes": passes}
        time.sleep(1)


if __name__ == "__main__":
    result = main(sys.argv[1], int(sys.argv[2]))
    print(json.dumps(result))
    sys.exit(0 if result["clear"] else 1)
