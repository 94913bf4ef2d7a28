"""Fence a mail server off the NFS store, or let it back, on the NFS server.

  nfs_fence.py fence ADDRESS     withdraw every export the configuration
                                 gives ADDRESS (exportfs -u, which flushes
                                 the kernel's export cache), then expire
                                 ADDRESS's NFSv4 clients (their opens,
                                 locks and delegations: "expire" written to
                                 /proc/fs/nfsd/clients/N/ctl, Linux 5.3 and
                                 later), so a client that hung cannot finish
                                 a write when it resumes: its state is gone
                                 and a new open is refused
  nfs_fence.py unfence ADDRESS   export them to ADDRESS again, with the
                                 options of the configuration (exportfs -o)

The configuration (/etc/exports, /etc/exports.d/*.exports) stays as it is:
a later `exportfs -ra` (the nfs_server role's handler, a restart of the
NFS server) exports to a fenced server again. Prints one JSON object:
changed, exports, expired."""
import glob
import json
import os
import re
import subprocess
import sys

CLIENTS = "/proc/fs/nfsd/clients"
EXPORTS = ["/etc/exports", "/etc/exports.d/*.exports"]


def configured(address):
    """[(path, options)] of the configured exports that name address."""
    found = []
    for name in [n for pattern in EXPORTS for n in sorted(glob.glob(pattern))]:
        with open(name) as f:
            for line in f:
                words = line.split("#", 1)[0].split()
                for client in words[1:]:
                    host, _sep, options = client.partition("(")
                    if host == address:
                        found.append((words[0], options.rstrip(")")))
    return found


def exported(address):
    """Whether the kernel's export table (exportfs -s) names address."""
    out = subprocess.run(["exportfs", "-s"], check=True, capture_output=True, text=True).stdout
    return re.search(r"(^|\s)%s\(" % re.escape(address), out) is not None


def clients(address):
    """The NFSv4 client directories whose peer is address."""
    if not os.path.isdir(CLIENTS):
        sys.exit("%s is missing (Linux older than 5.3, or nfsd not running): the NFSv4 state of %s cannot be "
                 "expired, so this server cannot fence it" % (CLIENTS, address))
    found = []
    for info in sorted(glob.glob(os.path.join(CLIENTS, "*", "info"))):
        with open(info) as f:
            text = f.read()
        match = re.search(r'^address: "(.*):\d+"$', text, re.M)
        if match and match.group(1).strip("[]") == address:
            found.append(os.path.dirname(info))
    return found


def expire(client):
    """The kernel drops the client's state, and its directory, before the
    write returns."""
    with open(os.path.join(client, "ctl"), "w") as f:
        f.write("expire\n")


def fence(address):
    exports = configured(address)
    if not exports:
        # A network or a name in the configuration cannot be withdrawn from
        # one of its clients: the fence would hold nothing.
        sys.exit("no export of the configuration names %s itself (a network or a host name covers it?): its "
                 "export cannot be withdrawn from it alone, so this server cannot fence it" % address)
    changed = exported(address)
    for path, _options in exports:
        subprocess.run(["exportfs", "-u", "%s:%s" % (address, path)], check=False, capture_output=True)
    if exported(address):
        sys.exit("exportfs -u did not withdraw the exports of %s" % address)
    expired = []
    for client in clients(address):
        expire(client)
        expired.append(os.path.basename(client))
    left = clients(address)
    if left:
        sys.exit("the NFSv4 clients %s of %s are still there after expire" % (left, address))
    return {"changed": changed or bool(expired), "exports": [p for p, _o in exports], "expired": expired}


def unfence(address):
    exports = configured(address)
    if not exports:
        sys.exit("no export of the configuration names %s" % address)
    changed = not exported(address)
    for path, options in exports:
        subprocess.run(["exportfs", "-o", options, "%s:%s" % (address, path)], check=True)
    return {"changed": changed, "exports": [p for p, _o in exports], "expired": []}


if __name__ == "__main__":
    action, target = sys.argv[1], sys.argv[2]
    print(json.dumps({"fence": fence, "unfence": unfence}[action](target)))
