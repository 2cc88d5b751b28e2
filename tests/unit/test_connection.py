"""Failure paths of `connect` that a real server cannot easily produce on demand."""
import base64
import re
import shutil
import socket
import subprocess

import paramiko
import pytest
from fabric import Config

from fikaso import connection
from fikaso.errors import FikasoError


@pytest.fixture
def opening(mocker):
    mocker.patch.object(connection, "SANDBOX_SSH_CONFIG", connection.PROJECT_ROOT / "no-such-file")
    return mocker.patch("fabric.Connection.open")


def test_unknown_key_message_shows_the_fingerprint(opening):
    offered = paramiko.RSAKey.generate(1024)
    opening.side_effect = connection.UnknownHostKey("[127.0.0.1]:2222", offered)
    with pytest.raises(FikasoError) as error:
        connection.connect("deploy@127.0.0.1:2222", Config())
    message = str(error.value)
    assert connection.fingerprint(offered) in message
    assert "fab host.trust -H deploy@127.0.0.1:2222" in message


def test_changed_key_names_both_fingerprints(opening):
    old, new = paramiko.RSAKey.generate(1024), paramiko.RSAKey.generate(1024)
    opening.side_effect = paramiko.BadHostKeyException("h", new, old)
    with pytest.raises(FikasoError) as error:
        connection.connect("deploy@h", Config())
    message = str(error.value)
    assert "CHANGED" in message and connection.fingerprint(new) in message
    assert connection.fingerprint(old) in message


def test_refused_login(opening):
    opening.side_effect = paramiko.AuthenticationException("no")
    with pytest.raises(FikasoError, match="refused the SSH login.*authorized_keys"):
        connection.connect("deploy@h", Config())


def test_timeout(opening):
    opening.side_effect = socket.timeout("timed out")
    with pytest.raises(FikasoError, match="Cannot reach deploy@h:22 over SSH"):
        connection.connect("deploy@h", Config())


def test_unknown_keys_are_rejected_by_policy():
    client = paramiko.SSHClient()
    with pytest.raises(connection.UnknownHostKey):
        connection._RejectShowingFingerprint().missing_host_key(client, "h", paramiko.RSAKey.generate(1024))


def test_fingerprint_is_openssh_style():
    key = paramiko.RSAKey.generate(1024)
    assert re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", connection.fingerprint(key))


def _public_key(line: str) -> paramiko.PKey:
    name, blob = line.split()[:2]
    return paramiko.PKey.from_type_string(name, base64.b64decode(blob))


def test_fingerprint_of_a_known_key_is_what_ssh_keygen_printed():
    key = _public_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGt+6sNZDhG2qV4klxq2hpxVmypk7UuPJp6Jpi8c5oSW")
    # `ssh-keygen -lf` on that key: 256 SHA256:Z1CArVlTkg/QYjjXSero05OqlPwpwBDhD7BitRanrSI no comment (ED25519)
    assert connection.fingerprint(key) == "SHA256:Z1CArVlTkg/QYjjXSero05OqlPwpwBDhD7BitRanrSI"


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen is not installed")
@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_fingerprint_matches_ssh_keygen(tmp_path, kind):
    path = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True)
    printed = subprocess.run(["ssh-keygen", "-lf", str(path) + ".pub"], check=True,
                             capture_output=True, text=True).stdout.split()[1]
    assert connection.fingerprint(_public_key((tmp_path / "key.pub").read_text())) == printed
