

from fikaso.connection import fingerprint, offered_host_key, record_host_key
from fikaso.errors import FikasoError

from .common import dry, fikaso_task, settings_of, target


@fikaso_task(help={"expect": "the SHA256:... fingerprint you expect; skips the question when it matches"})
def trust(c, expect=None):
    """First contact with a new VPS: show its host key's fingerprint and record it once you confirm.

    Compare the fingerprint with the one the server shows on its console
    (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub). Every other task refuses hosts whose key
    is not recorded, or whose key changed.
    """
    name, key, path = offered_host_key(config=c.config, **target(c, settings_of(c)))
    shown = fingerprint(key)
    print(f"{name} offers {key.get_name()} {shown}")
    if expect is not None:
        if expect.strip() != shown:
            raise FikasoError(f"The fingerprint {shown} is not the one you expected ({expect})",
                              "Do not trust this host until you know why; check the address and the "
                              "server's console")
    elif input("Trust this key? Type yes to record it: ").strip().lower() != "yes":
        raise FikasoError("Not trusted: nothing was recorded", "Run again and type yes once the fingerprint "
                          "matches the server's")
    if dry(c):
        print(f"would record it in {path} (dry run: nothing recorded)")
        return
    record_host_key(name, key, path)
    print(f"recorded in {path}")
