"""Which host, user and port the tasks connect to."""
from types import SimpleNamespace

from fabric import Config, Connection
from paramiko import SSHConfig

from fikaso.config import load_settings
from tasks.common import target

from .helpers import ROOT, shipped_section

SETTINGS = load_settings(shipped_section(), root=ROOT)


def h(typed: str, user_ssh_config: str = "") -> Connection:
    """The c that `fab -H typed` gives a task (Fabric builds it before the project's ssh_config is read)."""
    return Connection(typed, config=Config(ssh_config=SSHConfig.from_text(user_ssh_config)))


def test_without_h_the_configured_host_and_ssh_config_files():
    assert target(SimpleNamespace(), SETTINGS) == {"host": "fikaso-sandbox",
                                                   "ssh_config_files": (ROOT / ".sandbox" / "ssh_config",
                                                                        ROOT / ".sandbox-test" / "ssh_config",
                                                                        ROOT / ".sandbox" / "nodes" / "ssh_config",
                                                                        ROOT / ".sandbox-test" / "nodes" / "ssh_config")}


def test_a_bare_alias_leaves_user_and_port_to_ssh_config():
    assert target(h("fikaso-sandbox"), SETTINGS) == {"host": "fikaso-sandbox",
                                                     "ssh_config_files": SETTINGS.ssh_config}
    assert target(h("vps", "Host vps\n  User me\n  Port 2200\n"), SETTINGS).keys() == {"host", "ssh_config_files"}


def test_a_user_and_port_typed_are_passed_on():
    found = target(h("someone-else@vps:2201"), SETTINGS)
    assert (found["host"], found["user"], found["port"]) == ("vps", "someone-else", 2201)
    found = target(h("someone-else@vps"), SETTINGS)
    assert found["user"] == "someone-else" and "port" not in found
