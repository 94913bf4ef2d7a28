"""Ask Postfix to deliver now the queued mail for the recipients named on
the command line that was held (deferred) while their mailboxes moved or
were re-pinned. Prints one JSON object: the queue ids released, and those
still waiting in the queue for these recipients when it gave up.

Held mail sits in the deferred queue (the transport held is in
defer_transports; the queue manager resolves the recipient again at each
attempt). A message that was in the active queue when the hold was released
may have been resolved before, and is then deferred a moment later: the
queue is read again until each message seen in the incoming or active queue
at the start has left them (at most WAIT seconds; mail that arrives later is
resolved after the release and needs nothing). Each deferred one is released
once (postqueue -i)."""
import json
import subprocess
import sys
import time

WAIT = 10
recipients = set(arg.lower() for arg in sys.argv[1:])


def queued():
    """(queue name, queue id) of each message with a recipient named."""
    out = subprocess.run(["postqueue", "-j"], check=True, capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        entry = json.loads(line)
        if any(r.get("address", "").lower() in recipients for r in entry.get("recipients", [])):
            found.append((entry.get("queue_name"), entry["queue_id"]))
    return found


released, deadline = [], time.time() + WAIT
moving = set(i for q, i in queued() if q in ("maildrop", "incoming", "active"))
while True:
    found = queued()
    for queue_name, queue_id in found:
        if queue_name == "deferred" and queue_id not in released:
            # A message delivered meanwhile is no longer there: not an error.
            if subprocess.run(["postqueue", "-i", queue_id], capture_output=True, check=False).returncode == 0:
                released.append(queue_id)
    busy = [i for q, i in found if i in moving and q in ("maildrop", "incoming", "active")]
    if not busy or time.time() >= deadline:
        break
    time.sleep(0.5)
print(json.dumps({"released": released, "waiting": sorted(set(i for _q, i in queued()))}))
