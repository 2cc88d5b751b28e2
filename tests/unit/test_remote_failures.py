"""Failure paths of the link and the runner that a real server cannot produce on demand: a link
that dies silently, and a disk that fills up."""
import socket
from types import SimpleNamespace

import pytest

from fikaso import connection
from fikaso.errors import ConnectionLost, DiskFull
from fikaso.plan import Action
from fikaso.remote import Result, SSHRemote
from fikaso.runner import Runner

from .helpers import ScriptedRemote


class Transport:
    def __init__(self, sock=None, active=True):
        self.sock, self.active, self.keepalive = sock, active, None

    def set_keepalive(self, seconds):
        self.keepalive = seconds

    def is_active(self):
        return self.active


@pytest.mark.parametrize("ssh_config, keepalive, give_up_ms", [
    ({}, 15, 45_000),
    ({"serveraliveinterval": "5", "serveralivecountmax": "2"}, 5, 10_000),
])
def test_a_dead_link_is_given_up_after_server_alive_interval_times_count(ssh_config, keepalive, give_up_ms):
    with socket.socket() as sock:
        transport = Transport(sock)
        connection._notice_a_dead_link(SimpleNamespace(ssh_config=ssh_config, transport=transport))
        assert transport.keepalive == keepalive
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == give_up_ms


def test_server_alive_interval_0_turns_keepalives_off_as_in_openssh():
    with socket.socket() as sock:
        transport = Transport(sock)
        connection._notice_a_dead_link(SimpleNamespace(ssh_config={"serveraliveinterval": "0"}, transport=transport))
        assert transport.keepalive is None and sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 0


class Channel:
    """A channel whose upload breaks the way paramiko's does when the link dies."""

    def exec_command(self, command):
        pass

    def sendall(self, data):
        raise OSError("Socket is closed")

    def close(self):
        pass


def remote_whose_link_dies(transport) -> SSHRemote:
    transport.open_session = Channel
    client = SimpleNamespace(get_transport=lambda: transport)
    return SSHRemote(SimpleNamespace(client=client, host="vps.example.com"))


def test_a_link_lost_mid_upload_is_named_with_what_was_running_and_what_to_do():
    remote = remote_whose_link_dies(Transport())
    with pytest.raises(ConnectionLost) as lost:
        remote.run("tar -x", label="uploading release 1", stdin=b"x" * 10)
    message = str(lost.value)
    assert "The connection to vps.example.com was lost while uploading release 1 (Socket is closed)" in message
    assert "Once `ssh vps.example.com true` works again, run the same command again" in message


def test_a_command_cut_off_by_a_dead_transport_is_not_mistaken_for_its_own_failure(mocker):
    transport = Transport(active=False)
    remote = remote_whose_link_dies(transport)
    channel = mocker.Mock(**{"recv_exit_status.return_value": -1})
    transport.open_session = lambda: channel
    mocker.patch("fikaso.remote._drain", return_value=("", ""))
    with pytest.raises(ConnectionLost, match="the SSH session ended"):
        remote.run("sleep 60", label="running migrations")


def test_a_full_disk_is_named_whatever_the_action_was():
    full = Result("", "tar: ./public/big.bin: Cannot write: No space left on device\n", 2)
    runner = Runner.on(ScriptedRemote(full))
    with pytest.raises(DiskFull) as error:
        runner.run(Action("uploading release 2", "tar -x", failure=lambda result: ValueError("not this")))
    message = str(error.value)
    assert message.startswith("uploading release 2 failed: the VPS is out of disk space "
                              "(tar: ./public/big.bin: Cannot write: No space left on device)")
    assert "nothing else was deleted to make room" in message and "Free space on the VPS" in message


def test_a_write_tar_could_only_finish_part_of_is_a_full_disk_too():
    short = Result("", "tar: public/big.bin: Wrote only 4096 of 10240 bytes\ntar: Exiting with failure status\n", 2)
    with pytest.raises(DiskFull, match=r"out of disk space \(tar: public/big.bin: Wrote only 4096 of 10240 bytes\)"):
        Runner.on(ScriptedRemote(short)).run(Action("uploading release 2", "tar -x"))
