"""Where things live on the VPS. A person with `ls` should find their way around it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from .config import PANELS

BUNDLE_HASH_FILE = ".bundle-sha256"
SECRETS_HASH_FILE = ".sha256"
RELEASE_FILE = "RELEASE"
SOURCE_HASH_FILE = "SOURCE_SHA256"
APP_ROOT = "/var/www/app"   # a panel's folder, as its containers mount it


@dataclass(frozen=True)
class Layout:
    base: PurePosixPath
    swarm: bool = False     # the stack runs as a Docker Swarm stack on several VPSs, each with this layout

    @property
    def stack(self) -> PurePosixPath:
        return self.base / "stack"

    @property
    def secrets(self) -> PurePosixPath:
        return self.base / "secrets"

    @property
    def state(self) -> PurePosixPath:
        return self.base / "state"

    @property
    def certificates(self) -> PurePosixPath:
        """certbot's folder (/etc/letsencrypt in its container): live/<domain>/ holds each certificate."""
        return self.base / "certificates"

    @property
    def proxy_certificates(self) -> PurePosixPath:
        """What the proxy serves: <domain>.pem, each key with its chain, readable by nginx's workers
        (fikaso-certs publish writes them from certbot's live/)."""
        return self.base / "proxy-certificates"

    @property
    def published_stamp(self) -> PurePosixPath:
        """The checksum of the live certificates that fikaso-certs publish last made the proxy's."""
        return self.state / "certificates.published"

    @property
    def proxy_config(self) -> PurePosixPath:
        """The live proxy config; fikaso/proxy.py replaces it only after a check."""
        return self.stack / "nginx" / "proxy" / "proxy.conf"

    @property
    def acme_webroot(self) -> PurePosixPath:
        """Where certbot puts the HTTP challenge answers that the proxy serves."""
        return self.base / "acme"

    @property
    def audit_log(self) -> PurePosixPath:
        return self.state / "audit.log"

    def release_log(self, site: str) -> PurePosixPath:
        """One JSON line per release of a site: who, when, which commit and image, the result."""
        return self.state / f"{site}.releases.jsonl"

    def site(self, name: str) -> PurePosixPath:
        """A panel's folder (mounted at /var/www/app in its containers), or the landing site's."""
        return self.base / "panels" / name if name in PANELS else self.base / name

    def releases(self, name: str) -> PurePosixPath:
        return self.site(name) / "releases"

    def release(self, name: str, release_id: str) -> PurePosixPath:
        return self.releases(name) / release_id

    def current(self, name: str) -> PurePosixPath:
        return self.site(name) / "current"

    def shared(self, name: str) -> PurePosixPath:
        return self.site(name) / "shared"

    def folders(self) -> list[PurePosixPath]:
        """Every folder setup creates, parents first."""
        out = [self.base, self.stack, self.secrets, self.state, self.certificates, self.proxy_certificates,
               self.acme_webroot]
        for panel in PANELS:
            shared = self.shared(panel)
            # Mount points of the panel's volumes; nginx mounts them read-only, so they must exist.
            out += [self.site(panel), self.releases(panel), shared, shared / "storage", shared / "bootstrap-cache"]
        out += [self.site("landing"), self.releases("landing")]
        return out
