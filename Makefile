# The two commands: `make run` (the whole gateway on this machine) and `make test`; `make lint` (ruff, mypy) too.
# Each bootstraps .venv from the pinned requirement files and is quick once it is set up.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run reset test lint bench venv clean synth cfn-lint lambda-zip assets

# Infrastructure: `make synth` writes infra/cdk.out/*.template.json offline (no AWS credentials, no
# Docker), with cdk-nag's AwsSolutions pack run on the app (an unacknowledged error fails it), and
# validates them with cfn-lint. STAGE=dev|prod picks the stack (default dev).
STAGE        ?= dev
INFRA        := infra
NODE_STAMP   := $(INFRA)/node_modules/.installed
SYNTH_ENV    := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1 JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=18,20 \
                AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} CDK_DISABLE_VERSION_CHECK=1

venv: $(STAMP)

$(STAMP): requirements.txt requirements-host.txt requirements-dev.txt requirements-infra.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# chalice 1.34 requires pip < 26.3
	$(PY) -m pip install --quiet --progress-bar off 'pip>=24,<26.3'
	$(PY) -m pip install --quiet --progress-bar off -r requirements-dev.txt
	touch $(STAMP)

# /docs serves Swagger UI from the pinned npm package swagger-ui-dist (web/package-lock.json): npm ci
# (integrity-checked, install scripts off: its @scarf/scarf dependency only phones home) and copy the
# two files the page needs into the Lambda package's static dir (git-ignored there).
WEB_DIR      := web
SWAGGER_DIST := $(WEB_DIR)/node_modules/swagger-ui-dist
DOCS_STATIC  := chalicelib/static/docs
ASSETS_STAMP := $(DOCS_STATIC)/.swagger-ui.installed

assets: $(ASSETS_STAMP)

$(ASSETS_STAMP): $(WEB_DIR)/package.json $(WEB_DIR)/package-lock.json
	cd $(WEB_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	cp $(SWAGGER_DIST)/swagger-ui-bundle.js $(SWAGGER_DIST)/swagger-ui.css $(DOCS_STATIC)/
	cp $(SWAGGER_DIST)/swagger-ui-bundle.js.LICENSE.txt $(DOCS_STATIC)/
	cp $(SWAGGER_DIST)/LICENSE $(DOCS_STATIC)/swagger-ui-LICENSE.txt
	touch $@

# State (tables, queued events, media) lives in LOCAL_STATE_DIR (default .data/local-state) and survives
# restarts; `make reset` deletes it, so the next `make run` starts empty (`RESET=1 make run` does both).
run: $(STAMP) $(ASSETS_STAMP)
	$(PY) -m local_gateway $(if $(RESET),--reset)

reset: $(STAMP)
	$(PY) -m local_gateway --reset-only

test: $(STAMP) $(ASSETS_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# Static checks: ruff on the whole tree, mypy on app.py, chalicelib/, session_host/, local_gateway/ and
# infra/wago_infra/ (strict on chalicelib/core);
# both read their configuration from pyproject.toml.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/api_overhead.py

# The Lambda deployment zip as the stack deploys it (python3.13 wheels whatever Python runs this);
# prints its path and sizes. Cached under .data/lambda-build/.
lambda-zip: $(STAMP) $(ASSETS_STAMP)
	$(PY) infra/wago_infra/package.py

$(NODE_STAMP): $(INFRA)/package.json $(INFRA)/package-lock.json
	cd $(INFRA) && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

synth: $(STAMP) $(NODE_STAMP) $(ASSETS_STAMP)
	rm -rf $(INFRA)/cdk.out $(INFRA)/chalice.out
	cd $(INFRA) && $(SYNTH_ENV) npx --no-install cdk synth --quiet --no-notices --no-version-reporting \
	    -c stage=$(STAGE) -o cdk.out
	$(MAKE) --no-print-directory cfn-lint

# W3005 (a DependsOn that a GetAtt already implies) is how CDK wires every Lambda to its role policy.
cfn-lint: $(STAMP)
	$(VENV)/bin/cfn-lint --ignore-checks W3005 -- $(INFRA)/cdk.out/*.template.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .chalice/deployments $(INFRA)/cdk.out $(INFRA)/chalice.out \
	    $(INFRA)/node_modules .data/lambda-build .data/host-image
	rm -rf $(WEB_DIR)/node_modules $(ASSETS_STAMP) $(DOCS_STATIC)/swagger-ui*
