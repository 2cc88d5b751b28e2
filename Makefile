# The two commands a newcomer needs: `make demo` and `make test`. Both install what they need
# (Docker engine and Compose v2 on this machine, a Python venv, the sandbox images) and reuse it
# on a second run.
PYTHON ?= python3
VENV := .venv
FAB := $(VENV)/bin/fab
PYTEST := $(VENV)/bin/python -m pytest

.PHONY: demo test unit e2e host venv down clean

demo: host venv
	$(FAB) demo

test: host venv
	$(PYTEST)

unit: venv
	$(PYTEST) tests/unit

e2e: host venv
	$(PYTEST) tests/e2e

host:
	@bash scripts/install-host.sh

venv: $(VENV)/.installed

# Test tools plus Fikaso itself as an editable install (fikaso and tasks import from this folder).
# pip builds it with setuptools fetched from PyPI (build isolation): the setuptools a venv starts
# with is too old to build an editable wheel on its own (--no-build-isolation fails).
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -e .
	touch $@

# Both test VPSs: the demo's and the one the end-to-end suite owns.
down: venv
	$(FAB) sandbox.down
	FIKASO_SANDBOX=test $(FAB) sandbox.down

clean: down
	rm -rf $(VENV)
