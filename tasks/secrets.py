

from fikaso import secrets as fikaso_secrets

from .common import fikaso_task, settings_of


@fikaso_task(local="create the missing passwords and .env files in the local secrets folder")
def generate(c):
    """Create strong passwords and each panel's .env in the local secrets folder (existing ones are kept)."""
    settings = settings_of(c)
    written = fikaso_secrets.generate(settings)
    for path in written:
        print(f"created {path}")
    print(f"secrets: {len(written)} created, the rest already existed, in {settings.secrets_dir}")
