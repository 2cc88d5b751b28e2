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

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

down: venv
	$(FAB) sandbox.down

clean: down
	rm -rf $(VENV)
