"""Failure paths of `connect` that a real server cannot easily produce on demand."""
import base64
import re
import shutil
import subprocess
import socket

import paramiko
import pytest
from fabric import Config, Connection
from paramiko import SSHConfig

from fikaso import connection
from fikaso.errors import FikasoError


@pytest.fixture
def opening(mocker):
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


def isolated_config(user_ssh_config: str = "") -> Config:
    """A Config whose user ssh_config is `user_ssh_config`, not this machine's files."""
    return Config(ssh_config=SSHConfig.from_text(user_ssh_config))


def test_project_ssh_config_defines_an_alias(tmp_path, mocker):
    def fake_open(self):
        self.transport = mocker.Mock()
    mocker.patch("fabric.Connection.open", fake_open)
    extra = tmp_path / "ssh_config"
    extra.write_text("Host vps\n  HostName 127.0.0.1\n  Port 2222\n  User deploy\n")
    opened = connection.connect("vps", isolated_config(), ssh_config_files=[tmp_path / "missing", extra])
    assert (opened.host, opened.port, opened.user) == ("127.0.0.1", 2222, "deploy")


def test_the_users_ssh_config_wins_and_each_file_is_read_once(tmp_path):
    extra = tmp_path / "ssh_config"
    extra.write_text("Host vps\n  Port 2222\n  User deploy\n")
    config = isolated_config("Host vps\n  User me\n")
    for _ in range(2):
        connection.load_ssh_config_files(config, [extra])
    assert config.base_ssh_config.lookup("vps")["user"] == "me"
    assert len(config.base_ssh_config.get_hostnames()) == 2  # vps and the implicit *


def test_a_user_and_port_given_win_over_the_alias_entry(tmp_path):
    extra = tmp_path / "ssh_config"
    extra.write_text("Host vps\n  Port 2222\n  User deploy\n")
    config = connection.load_ssh_config_files(isolated_config(), [extra])
    given = Connection("root@vps:2200", config=config)
    assert (given.user, given.port) == ("root", 2200)
    assert Connection("admin@vps", config=config).port == 2222


def test_unparsable_ssh_config_is_a_user_error(tmp_path):
    extra = tmp_path / "ssh_config"
    extra.write_text("Host\n")
    with pytest.raises(FikasoError, match=f"Cannot read the ssh_config file {extra}.*fikaso.ssh_config"):
        connection.load_ssh_config_files(isolated_config(), [extra])


# The connect timeout: `fab -t N` (Fabric keeps it in connect_kwargs.timeout), then timeouts.connect,
# then the host's ssh_config ConnectTimeout, else 15 s.

def timeout_config(user_ssh_config: str = "", cli: int | None = None, configured: int | None = None) -> Config:
    overrides = {"timeouts": {"connect": configured}}
    if cli is not None:
        overrides["connect_kwargs"] = {"timeout": cli}  # what `fab -t` sets
    return Config(ssh_config=SSHConfig.from_text(user_ssh_config), overrides=overrides)


@pytest.fixture
def paramiko_connect(mocker):
    return mocker.patch("paramiko.SSHClient.connect", side_effect=socket.timeout("timed out"))


def timeout_used(config: Config, paramiko_connect, host: str = "deploy@vps") -> int:
    with pytest.raises(FikasoError, match="Cannot reach"):
        connection.connect(host, config)
    return paramiko_connect.call_args.kwargs["timeout"]


def test_the_cli_timeout_wins_over_ssh_config(paramiko_connect):
    config = timeout_config("Host vps\n  ConnectTimeout 7\n", cli=5, configured=9)
    assert timeout_used(config, paramiko_connect) == 5
    assert paramiko_connect.call_args.kwargs["banner_timeout"] == 5  # as OpenSSH's ConnectTimeout
    assert config.connect_kwargs.timeout == 5  # the next connection gets it too


def test_timeouts_connect_wins_over_ssh_config(paramiko_connect):
    assert timeout_used(timeout_config("Host vps\n  ConnectTimeout 7\n", configured=9), paramiko_connect) == 9


def test_ssh_config_connect_timeout_of_that_host(paramiko_connect):
    config = timeout_config("Host vps\n  ConnectTimeout 7\n")
    assert timeout_used(config, paramiko_connect) == 7
    assert timeout_used(config, paramiko_connect, "deploy@other") == 15


def test_default_timeout(paramiko_connect):
    assert timeout_used(timeout_config(), paramiko_connect) == connection.DEFAULT_CONNECT_TIMEOUT == 15


def test_bad_timeouts_are_user_errors():
    with pytest.raises(FikasoError, match="not a whole number.*ConnectTimeout"):
        connection.connect("vps", timeout_config("Host vps\n  ConnectTimeout soon\n"))
    with pytest.raises(FikasoError, match="positive number of seconds, not -3.*fab -t"):
        connection.connect("vps", timeout_config(cli=-3))


def test_host_trust_uses_the_same_timeout(mocker):
    create = mocker.patch("socket.create_connection", side_effect=OSError("unreachable"))
    with pytest.raises(FikasoError, match="Cannot reach"):
        connection.offered_host_key("vps", timeout_config("Host vps\n  ConnectTimeout 7\n", cli=5))
    assert create.call_args.kwargs["timeout"] == 5
    with pytest.raises(FikasoError):
        connection.offered_host_key("vps", timeout_config("Host vps\n  ConnectTimeout 7\n"))
    assert create.call_args.kwargs["timeout"] == 7
