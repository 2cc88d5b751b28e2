"""Failure paths of `connect` that a real server cannot easily produce on demand."""
import socket

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
    assert connection.fingerprint(key).startswith("SHA256:")
    assert not connection.fingerprint(key).endswith("=")
