# The two commands: `make run` (the whole gateway on this machine) and `make test`.
# Each bootstraps .venv from the pinned requirement files and is quick once it is set up.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench venv clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-host.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# chalice 1.34 requires pip < 26.3
	$(PY) -m pip install --quiet --progress-bar off 'pip>=24,<26.3'
	$(PY) -m pip install --quiet --progress-bar off -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m local_gateway

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/api_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .chalice/deployments
