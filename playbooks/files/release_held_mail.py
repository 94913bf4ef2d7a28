"""Ask Postfix to deliver now the queued mail for the recipients named on
the command line that was held (deferred) while their mailboxes moved or
were re-pinned. Prints one JSON object: the queue ids."""
import json
import subprocess
import sys

recipients = set(arg.lower() for arg in sys.argv[1:])
out = subprocess.run(["postqueue", "-j"], check=True, capture_output=True, text=True).stdout
ids = []
for line in out.splitlines():
    entry = json.loads(line)
    if entry.get("queue_name") != "deferred":
        continue
    if any(r.get("address", "").lower() in recipients for r in entry.get("recipients", [])):
        ids.append(entry["queue_id"])
for queue_id in ids:
    subprocess.run(["postqueue", "-i", queue_id], check=True)
print(json.dumps({"released": ids}))
