"""Shared test data: a valid fikaso section, and a copy of it to break."""
import copy
import http.server
import threading
from contextlib import contextmanager
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def shipped_section() -> dict:
    return copy.deepcopy(yaml.safe_load((ROOT / "fabric.yaml").read_text())["fikaso"])


@contextmanager
def http_server(handler=http.server.SimpleHTTPRequestHandler):
    """A local HTTP server with `handler`, in a thread; yields its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def swarm_section(nodes: list[dict], **more) -> dict:
    """The shipped settings on a swarm of `nodes`: without queue workers and schedulers, which run on one
    VPS only (as the test swarm's config has them)."""
    section = {**shipped_section(), "nodes": nodes, **more}
    for panel in section["panels"].values():
        panel.update(workers=0, scheduler=False)
    return section


class ScriptedRemote:
    """A stand-in server for failure paths: answers each script with the next scripted Result
    (exit 0 and no output once they run out) and remembers every script it was sent."""

    def __init__(self, *results):
        from fikaso.remote import Result
        self.results = list(results)
        self.scripts = []
        self.channels = 0
        self._empty = Result("", "", 0)

    def run(self, script, *, label, stdin=None, check=True, echo=None):
        self.scripts.append(script)
        self.channels += 1
        return self.results.pop(0) if self.results else self._empty

    def download(self, script, sink, *, label, progress=None):
        self.scripts.append(script)
        return 0


class FactServer:
    """A stand-in server that answers every fact it is asked from a table (fact name -> output
    lines) and records the scripts of actions, which change nothing; actions print nothing."""

    def __init__(self, facts: dict[str, str]):
        self.facts = facts
        self.actions: list[str] = []
        self.channels = 0

    def run(self, script, *, label, stdin=None, check=True, echo=None):
        from fikaso.plan import FACT_HEADER
        from fikaso.remote import Result
        self.channels += 1
        lines = []
        for line in script.splitlines():
            if line.startswith(f"echo '{FACT_HEADER} "):
                name = line.split(" ", 2)[2].rstrip("'")
                lines += [f"{FACT_HEADER} {name}", self.facts.get(name, "")]
        if script.split(f"echo '{FACT_HEADER} ")[0].strip():
            self.actions.append(script)
        return Result("\n".join(lines), "", 0)

    def download(self, script, sink, *, label, progress=None):
        self.actions.append(script)
        return 0
