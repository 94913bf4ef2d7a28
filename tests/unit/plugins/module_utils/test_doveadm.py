"""The doveadm server protocol helpers, against a scripted server on loopback."""

import base64
import socket
import threading

import pytest

from ansible_collections.mailops.mailstack.plugins.module_utils.doveadm import (
    DoveadmClient, DoveadmError, parse_reply, split_address, tab_escape, tab_unescape,
)


@pytest.mark.parametrize("target, want", [
    ("10.0.0.5", ("10.0.0.5", 24245)),
    ("10.0.0.5:2000", ("10.0.0.5", 2000)),
    ("[fd00::5]:2000", ("fd00::5", 2000)),
    ("[fd00::5]", ("fd00::5", 24245)),
    ("fd00::5", ("fd00::5", 24245)),
])
def test_split_address(target, want):
    assert split_address(target, 24245) == want


def test_tab_escaping_round_trips():
    text = "a\tb\nc\x01d\re"
    assert "\t" not in tab_escape(text) and tab_unescape(tab_escape(text)) == text


def test_parse_reply():
    assert parse_reply(b"INBOX\t2\t2554\t\n+\n") == (True, "", ["INBOX", "2", "2554"])
    assert parse_reply(b"\n+\n") == (True, "", [])
    assert parse_reply(b"\n-NOTFOUND\n") == (False, "NOTFOUND", [])
    with pytest.raises(DoveadmError, match="unexpected reply"):
        parse_reply(b"\nOK\n")


def serve(replies, password="secret"):
    """A one-connection server speaking the server side of the protocol."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    seen = []

    def run():
        conn = listener.accept()[0]
        f = conn.makefile("rb")
        seen.append(f.readline())
        conn.sendall(b"-\n")
        auth = f.readline().rstrip(b"\n").split(b"\t")[1]
        if base64.b64decode(auth) != b"\0doveadm\0" + password.encode():
            conn.sendall(b"-\n")
            conn.close()
            return
        conn.sendall(b"+\n")
        for reply in replies:
            seen.append(f.readline())
            conn.sendall(reply)
        conn.close()

    threading.Thread(target=run, daemon=True).start()
    return "127.0.0.1:%d" % listener.getsockname()[1], seen


def test_a_command_and_its_values():
    target, seen = serve([b"INBOX\t7\t1000\t\n+\n"])
    client = DoveadmClient(target, "secret")
    assert client.run(["mailbox", "status", "messages vsize", "*"], user="a@example.org") == ["INBOX", "7", "1000"]
    client.close()
    assert seen[0] == b"VERSION\tdoveadm-server\t1\t0\n"
    assert seen[1] == b"\ta@example.org\tmailbox\tstatus\tmessages vsize\t*\n"


def test_a_failing_command_carries_its_code():
    target, _seen = serve([b"\n-NOTFOUND\n"])
    client = DoveadmClient(target, "secret")
    with pytest.raises(DoveadmError) as e:
        client.run(["kick", "a@example.org"])
    assert e.value.code == "NOTFOUND" and "doveadm kick a@example.org failed (NOTFOUND)" in str(e.value)


def test_a_wrong_password_is_named():
    target, _seen = serve([], password="other")
    with pytest.raises(DoveadmError, match="refused the doveadm password"):
        DoveadmClient(target, "secret")


def test_nothing_listening_is_named():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(DoveadmError, match="cannot connect to the doveadm server at 127.0.0.1:%d" % port):
        DoveadmClient("127.0.0.1:%d" % port, "secret")
