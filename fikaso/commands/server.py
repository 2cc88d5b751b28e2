"""What setup puts on a server besides the stack: its folders, the secrets and the bundle's files."""
from __future__ import annotations

from .. import archive
from ..layout import Layout
from ..secrets import Secrets
from ..shell import cmd, q


def folders_script(layout: Layout, facts) -> str:
    """Every folder setup makes (`facts` is the stack fact: who the user is, whether sudo works)."""
    lines = []
    if facts.base_state == "missing":
        parent_make = cmd("mkdir", "-p", layout.base)
        sudo_make = cmd("sudo", "-n", "install", "-d", "-o", facts.uid, "-g", facts.uid, layout.base)
        lines.append(f"{parent_make} 2>/dev/null || {sudo_make}" if facts.sudo else parent_make)
    lines.append(cmd("mkdir", "-p", *layout.folders()))
    # Private keys live under certificates/: only the deploy user (and root) may look in.
    lines.append(cmd("chmod", "700", layout.secrets, layout.certificates))
    return "\n".join(lines)


def secrets_archive(secrets: Secrets) -> archive.Archive:
    # The password files are read inside the mysql container by its own user, so they are 0644
    # inside the 0700 secrets folder; the .env files are read by the app's own uid: 0600.
    entries = {f"secrets/{name}": (data, 0o644) for name, data in secrets.files().items()}
    for panel, env in secrets.env_files.items():
        entries[f"panels/{panel}/shared/.env"] = (env, 0o600)
    return archive.files(entries)


def extract_script(target, hash_file, sha: str) -> str:
    """Unpack the tar arriving on stdin into `target`, then record its hash."""
    return "\n".join([
        cmd("tar", "-x", "-p", "--no-same-owner", "-C", target),
        f"printf '%s\\n' {q(sha)} > {q(hash_file)}",
    ])
