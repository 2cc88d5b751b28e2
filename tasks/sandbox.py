import json



from sandbox import vps

from .common import fikaso_task, settings_of


@fikaso_task(local="start the local test VPS (building its images if needed)",
             help={"fresh": "remove the running test VPS and everything on it first, and start a blank one"})
def up(c, fresh=False):
    """Start the local test VPS (sshd + Docker engine), or check the running one; prints its info.

    Builds its image and the stand-in images once per machine; `fab -H fikaso-sandbox TASK` then
    reaches it with its host key pinned. With FIKASO_SANDBOX=test in the environment, every
    sandbox task acts on the end-to-end suite's own test VPS (fikaso-test) instead.
    """
    print(json.dumps(vps.up(settings_of(c).images, fresh=fresh), indent=2))


@fikaso_task(local="remove the local test VPS and everything on it")
def down(c):
    """Remove the local test VPS and everything on it."""
    vps.down()


@fikaso_task
def info(c):
    """Print the running test VPS's SSH host, port, user, key, known_hosts and HTTP(S) ports as JSON."""
    print(json.dumps(vps.info(), indent=2))


@fikaso_task(local="start the test ACME server inside the local test VPS")
def acme(c):
    """Start the test ACME server (pebble) inside the test VPS, for `fab certs.issue` there.

    Run it after `fab setup`. fabric.yaml's certificates section already points at it; the root
    that signs its certificates is written to .sandbox/acme/root.pem (for curl --cacert).
    """
    print(json.dumps(vps.acme_up(), indent=2))
