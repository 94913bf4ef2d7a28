"""The scripts repin_server.yml runs on the hosts: the session ender of a
mail server (playbooks/files/repin_sessions.py) and the fence of the NFS
server (playbooks/files/nfs_fence.py), against fakes of doveadm, postqueue,
exportfs and /proc/fs/nfsd/clients."""

import importlib.util
import json
import os
import shutil
import subprocess

import pytest

FILES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "playbooks", "files")


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(FILES, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sessions = load("repin_sessions")
fence = load("nfs_fence")

USERS = {"a@x.test", "b@x.test"}
WHO = "username\tproto\tpid\tip\nA@x.test\timap\t101\t10.0.0.9\nc@x.test\tpop3\t102\t10.0.0.9\n"
PROXY = "username\tproto\tsrc ip\tdest ip\tport\nb@x.test\timap\t10.0.0.8\t10.0.0.2\t143\n"
QUEUE = "\n".join(json.dumps(e) for e in [
    {"queue_name": "active", "queue_id": "1", "recipients": [{"address": "B@x.test"}, {"address": "z@x.test"}]},
    {"queue_name": "deferred", "queue_id": "2", "recipients": [{"address": "a@x.test"}]}])


def test_sessions_are_read_from_one_listing_each():
    assert sessions.users_in(WHO, USERS) == {"a@x.test"}
    assert sessions.users_in(PROXY, USERS) == {"b@x.test"}
    # Only the active queue: a delivery in progress (deferred mail waits).
    assert sessions.deliveries(QUEUE, USERS) == {"b@x.test"}
    assert sessions.deliveries("", USERS) == set()


class Server(object):
    """doveadm and postqueue of a server whose sessions end when kicked
    (or never, or whose kick fails)."""

    def __init__(self, who=WHO, proxy=PROXY, queue="", kick_rc=0, sticky=False):
        self.who, self.proxy, self.queue = who, proxy, queue
        self.kick_rc, self.sticky = kick_rc, sticky
        self.commands = []

    def run(self, command, capture_output, text, check):
        self.commands.append(command)
        out, rc = "", 0
        if command[-2:] == ["who", "-1"]:
            out = self.who
        elif command[-2:] == ["proxy", "list"]:
            out = self.proxy
        elif command[0] == "postqueue":
            out, self.queue = self.queue, ""
        elif "kick" in command:
            rc = self.kick_rc
            if not self.sticky:
                self.who = "\n".join(line for line in self.who.splitlines() if command[-1] not in line.lower())
                self.proxy = "\n".join(line for line in self.proxy.splitlines() if command[-1] not in line.lower())
        return subprocess.CompletedProcess(command, rc, out, "Error: kick failed" if rc else "")


@pytest.fixture
def users_file(tmp_path):
    path = tmp_path / "users"
    path.write_text("A@x.test\nb@x.test\n\n")
    return str(path)


def test_the_sessions_found_are_kicked_until_a_pass_finds_none(monkeypatch, users_file):
    server = Server(queue=QUEUE)
    monkeypatch.setattr(sessions.subprocess, "run", server.run)
    monkeypatch.setattr(sessions.time, "sleep", lambda s: None)
    result = sessions.main(users_file, 60)
    assert result["clear"] is True and result["kicked"] == ["a@x.test", "b@x.test"] and result["passes"] == 2
    kicks = [c for c in server.commands if "kick" in c]
    # One doveadm per session found; none for c@x.test (not re-pinned).
    assert kicks == [["doveadm", "kick", "a@x.test"], ["doveadm", "proxy", "kick", "b@x.test"]]


def test_a_failed_kick_is_reported_not_clear(monkeypatch, users_file):
    monkeypatch.setattr(sessions.subprocess, "run", Server(kick_rc=75).run)
    result = sessions.main(users_file, 60)
    assert result["clear"] is False and "doveadm kick a@x.test: exit 75: Error: kick failed" in result["msg"]


def test_a_session_that_does_not_end_is_reported_after_the_wait(monkeypatch, users_file):
    monkeypatch.setattr(sessions.subprocess, "run", Server(sticky=True).run)
    monkeypatch.setattr(sessions.time, "sleep", lambda s: None)
    result = sessions.main(users_file, -1)
    assert result["clear"] is False and '"sessions": ["a@x.test"]' in result["msg"], result


def test_no_session_means_clear_at_once(monkeypatch, users_file):
    server = Server(who="username\tproto\n", proxy="")
    monkeypatch.setattr(sessions.subprocess, "run", server.run)
    assert sessions.main(users_file, 60)["clear"] is True
    assert not [c for c in server.commands if "kick" in c]


# -- the fence ---------------------------------------------------------------

class Nfsd(object):
    """exportfs and /proc/fs/nfsd/clients of an NFS server."""

    def __init__(self, tmp_path, exported):
        self.exported = set(exported)
        self.commands = []
        self.clients = tmp_path / "clients"
        for n, address in enumerate(["10.0.0.2", "10.0.0.3", "10.0.0.2"], 1):
            (self.clients / str(n)).mkdir(parents=True)
            (self.clients / str(n) / "info").write_text(
                'clientid: 0x%d\naddress: "%s:%d"\nname: "Linux NFSv4.2 ms"\n' % (n, address, 700 + n))

    def run(self, command, check=False, capture_output=False, text=False):
        self.commands.append(command)
        if command[:2] == ["exportfs", "-s"]:
            out = "".join("/srv/mailstore  %s(sync,wdelay,root_squash)\n" % a for a in sorted(self.exported))
            return subprocess.CompletedProcess(command, 0, out, "")
        if command[:2] == ["exportfs", "-u"]:
            self.exported.discard(command[2].split(":")[0])
        if command[:2] == ["exportfs", "-o"]:
            self.exported.add(command[3].split(":")[0])
        return subprocess.CompletedProcess(command, 0, "", "")


@pytest.fixture
def nfsd(tmp_path, monkeypatch):
    server = Nfsd(tmp_path, ["10.0.0.2", "10.0.0.3"])
    conf = tmp_path / "exports.d"
    conf.mkdir()
    (conf / "mailstack.exports").write_text(
        "# managed\n/srv/mailstore 10.0.0.2(rw,sync,no_subtree_check,root_squash) "
        "10.0.0.3(rw,sync,no_subtree_check,root_squash)\n")
    monkeypatch.setattr(fence, "EXPORTS", [str(tmp_path / "exports"), str(conf / "*.exports")])
    monkeypatch.setattr(fence, "CLIENTS", str(server.clients))
    monkeypatch.setattr(fence.subprocess, "run", server.run)
    monkeypatch.setattr(fence, "expire", shutil.rmtree)
    return server


def test_fence_withdraws_the_export_and_expires_every_client_of_the_address(nfsd):
    assert fence.fence("10.0.0.2") == {"changed": True, "exports": ["/srv/mailstore"], "expired": ["1", "3"]}
    assert nfsd.exported == {"10.0.0.3"}
    assert ["exportfs", "-u", "10.0.0.2:/srv/mailstore"] in nfsd.commands
    assert sorted(os.listdir(nfsd.clients)) == ["2"]
    # Again: nothing left to do.
    assert fence.fence("10.0.0.2")["changed"] is False


def test_fence_fails_when_a_client_survives_expire(nfsd, monkeypatch):
    monkeypatch.setattr(fence, "expire", lambda client: None)
    with pytest.raises(SystemExit, match=r"clients .* of 10.0.0.2 are still there after expire"):
        fence.fence("10.0.0.2")


def test_fence_fails_without_the_nfsd_clients_interface(nfsd, monkeypatch, tmp_path):
    monkeypatch.setattr(fence, "CLIENTS", str(tmp_path / "missing"))
    with pytest.raises(SystemExit, match="Linux older than 5.3.*cannot fence it"):
        fence.fence("10.0.0.2")


def test_unfence_exports_again_with_the_configured_options(nfsd):
    fence.fence("10.0.0.2")
    assert fence.unfence("10.0.0.2")["changed"] is True
    assert ["exportfs", "-o", "rw,sync,no_subtree_check,root_squash", "10.0.0.2:/srv/mailstore"] in nfsd.commands
    assert nfsd.exported == {"10.0.0.2", "10.0.0.3"}
    with pytest.raises(SystemExit, match="no export of the configuration names 10.0.0.9"):
        fence.unfence("10.0.0.9")


def test_fence_refuses_an_address_the_configuration_covers_only_by_a_network(nfsd, tmp_path):
    (tmp_path / "exports.d" / "mailstack.exports").write_text("/srv/mailstore 10.0.0.0/24(rw,sync)\n")
    with pytest.raises(SystemExit, match="no export of the configuration names 10.0.0.2 itself"):
        fence.fence("10.0.0.2")
    assert not [c for c in nfsd.commands if c[:2] == ["exportfs", "-u"]]
