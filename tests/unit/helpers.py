"""Shared test data: a valid fikaso section, and a copy of it to break."""
import copy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def shipped_section() -> dict:
    return copy.deepcopy(yaml.safe_load((ROOT / "fabric.yaml").read_text())["fikaso"])
