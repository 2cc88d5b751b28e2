"""What setup puts on a server besides the stack: its folders, the secrets and the bundle's files."""
from __future__ import annotations

from .. import archive
from ..layout import BUNDLE_HASH_FILE, SECRETS_HASH_FILE, Layout
from ..secrets import ALERT_CA_FILE, ALERT_WEBHOOK_FILE, Secrets
from ..shell import cmd, q
from .compose import SITES


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


def secrets_script(layout: Layout, sha: str) -> str:
    """Unpack the secrets archive arriving on stdin. The optional files (the alert webhook's) are
    removed first, so that one deleted here is gone from the server too."""
    optional = [layout.secrets / name for name in (ALERT_WEBHOOK_FILE, ALERT_CA_FILE)]
    return "\n".join([cmd("rm", "-f", *optional), extract_script(layout.base, layout.secrets / SECRETS_HASH_FILE, sha)])


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


def bundle_script(layout: Layout, sha: str, nginx_image: str) -> str:
    """Unpack the stack bundle arriving on stdin beside the live stack, check every site's nginx
    config with `nginx -t` in a one-off container, and only then copy it over the live stack.

    The site nginx containers mount their config folder from the live stack, so a config that
    fails the check must never be unpacked there: it would take the site down at its next restart.
    """
    incoming = layout.base / "stack.incoming"
    lines = [cmd("rm", "-rf", incoming), cmd("mkdir", "-p", incoming),
             cmd("tar", "-x", "-p", "--no-same-owner", "-C", incoming)]
    for site in SITES:
        check = cmd("docker", "run", "--rm", "--network", "none",
                    "--volume", f"{incoming / 'nginx' / site}:/etc/nginx/conf.d:ro", nginx_image, "nginx", "-t", "-q")
        lines += [
            f"if ! check=$({check} 2>&1); then",
            '  printf \'%s\\n\' "$check" >&2',
            f"  echo {q(f'The new nginx config of the {site} site fails nginx -t, so the stack bundle was not put live and every site keeps serving with its current config. Fix the template under nginx/ (the message above names the line), then run fab setup again.')} >&2",
            f"  {cmd('rm', '-rf', incoming)}",
            "  exit 1",
            "fi",
        ]
    lines += [cmd("cp", "-a", f"{incoming}/.", layout.stack), cmd("rm", "-rf", incoming),
              f"printf '%s\\n' {q(sha)} > {q(layout.stack / BUNDLE_HASH_FILE)}"]
    return "\n".join(lines)
