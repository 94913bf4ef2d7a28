"""Fakes for the state machine of mailbox_move: a mail database, Dovecot
servers (each mailbox a list of Message-IDs) and a clock; the disk is real
(tmp_path)."""

from ansible_collections.mailops.mailstack.plugins.module_utils.doveadm import DoveadmError

EMAIL = "carol@example.test"
HOSTS = {"ms1": "10.0.0.1", "ms2": "10.0.0.2"}


class Crash(BaseException):
    """The controller (or the module's process) killed: not an Exception, so nothing catches it."""


class Clock(object):
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class FakeDB(object):
    def __init__(self, clock, host="ms1", maildir="example.test/carol/"):
        self.clock = clock
        self.mailboxes = {EMAIL: [host, maildir], "dave@example.test": [host, "example.test/dave/"]}
        self.moves = {}
        self.hold = {}
        self.host_states = {"ms1": "active", "ms2": "active"}
        self.writes = 0
        self.crash_after = None

    def _write(self):
        self.writes += 1
        if self.crash_after is not None and self.writes > self.crash_after:
            raise Crash()

    def mailbox(self, email):
        return tuple(self.mailboxes[email]) if email in self.mailboxes else None

    def move(self, email):
        return dict(self.moves[email]) if email in self.moves else None

    def hosts(self):
        return dict((n, {"address": HOSTS[n], "state": s}) for n, s in self.host_states.items())

    def other_maildirs(self, email, maildir):
        return [m[1] for e, m in self.mailboxes.items() if e != email]

    def holder(self, email):
        move = self.moves.get(email, {})
        return move.get("owner"), move.get("lock_until")

    def start(self, email, source, target, owner, seconds):
        self._write()
        if email in self.moves:
            return self.holder(email)
        self.moves[email] = dict(source=source, target=target, state="copying", owner=owner,
                                 lock_until=self.clock() + seconds, sync_state=None, source_status=None)
        return None

    def lock(self, email, owner, seconds, dead=None):
        self._write()
        move = self.moves[email]
        if move["owner"] in (None, owner, dead) or move["lock_until"] < self.clock():
            move.update(owner=owner, lock_until=self.clock() + seconds)
        return None if move["owner"] == owner else self.holder(email)

    def unlock(self, email, owner):
        self._write()
        if email in self.moves and self.moves[email]["owner"] == owner:
            self.moves[email].update(owner=None, lock_until=None)

    def set_state(self, email, state, host=None, hold=None, **saved):
        self._write()
        if state is None:
            del self.moves[email]
        else:
            self.moves[email].update(saved, state=state)
        if host is not None:
            self.mailboxes[email][0] = host
        if hold:
            self.hold[email] = self.clock() + hold
        elif hold is not None:
            self.hold[email] = None

    def save(self, email, **saved):
        self._write()
        self.moves[email].update(saved)


class FakeDovecot(object):
    """Servers by address; the module runs on local (the target)."""

    def __init__(self, boxes, local):
        self.boxes = boxes
        self.local = local
        self.sessions = {}
        self.down = set()
        self.calls = []
        self.during_sync = []  # writers: one a pass, after it has read the mailboxes
        # Messages a two-way pass from a saved state does not carry to here
        # (dsync's state missing a message); lose_always: a full pass neither.
        self.lose = set()
        self.lose_always = False

    def size(self, address):
        return len(self.boxes[address]), 100 * len(self.boxes[address])

    def status(self, address):
        box = self.boxes.setdefault(address, [])
        return [["INBOX", str(len(box)), ",".join(box)]]

    def messages(self, address):
        return [("INBOX", m) for m in self.boxes.setdefault(address, [])]

    def who(self, address):
        if address in self.down:
            raise DoveadmError("cannot connect to the doveadm server at %s: Connection refused" % address)
        return ["carol@example.test", "1", "imap"] if self.sessions.get(address, 0) > 0 else []

    def kick(self, address, proxy=False):
        self.calls.append(("proxy kick" if proxy else "kick", address))
        if address in self.down:
            raise DoveadmError("cannot connect to the doveadm server at %s: Connection refused" % address)
        if self.sessions.get(address, 0) > 0:
            self.sessions[address] -= 1

    def dsync(self, mode, address, state):
        self.calls.append((mode, address, state))
        here = self.boxes.setdefault(self.local, [])
        there = self.boxes.setdefault(address, [])
        if mode == "backup":
            here[:] = there
        else:
            lost = self.lose if (state or self.lose_always) else set()
            merged = here + [m for m in there if m not in here and m not in lost]
            merged += [m for m in here if m not in merged]
            here[:] = merged
            there[:] = merged + [m for m in there if m not in merged]
        if self.during_sync:
            self.during_sync.pop(0)(self)
        return 0.5, "%s%d" % (state, len(self.calls))
