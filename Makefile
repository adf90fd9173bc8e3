# Kubemate: `make demo` starts the console on a local sandbox cluster, `make test` runs the whole suite.
# Both install what is missing first (Debian packages, the Python virtualenv, npm assets).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
MANAGE := $(PY) manage.py

include deploy/sandbox/sandbox.mk

.PHONY: help deps system-packages venv assets messages static services demo stop status test lint format decrypt-build \
  agent-build agent-test ai-build image bundle helm-lint

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

system-packages: ## Install the Debian packages Kubemate needs, when missing
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	test -x /usr/sbin/mariadbd || missing="$$missing mariadb-server"; \
	command -v msgfmt >/dev/null || missing="$$missing gettext"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	fc-list 2>/dev/null | grep -qi 'Noto Sans CJK' || missing="$$missing fonts-noto-cjk"; \
	ldconfig -p 2>/dev/null | grep -q 'libpangoft2-1.0.so.0' || missing="$$missing libpango-1.0-0 libpangoft2-1.0-0"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v git >/dev/null || missing="$$missing git"; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	command -v go >/dev/null || missing="$$missing golang"; \
	test -e /usr/include/ldap.h || missing="$$missing libldap2-dev"; \
	test -e /usr/include/sasl/sasl.h || missing="$$missing libsasl2-dev"; \
	test -x /usr/bin/prometheus || missing="$$missing prometheus"; \
	{ test -x /usr/bin/prometheus-alertmanager && test -x /usr/bin/amtool; } || missing="$$missing prometheus-alertmanager"; \
	test -x /usr/sbin/slapd || missing="$$missing slapd"; \
	test -x /usr/sbin/rsyslogd || missing="$$missing rsyslog"; \
	test -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so || test -e /usr/lib/aarch64-linux-gnu/rsyslog/lmnsd_gtls.so || missing="$$missing rsyslog-gnutls"; \
	command -v ldapadd >/dev/null || missing="$$missing ldap-utils"; \
	command -v gcc >/dev/null || missing="$$missing gcc"; \
	command -v g++ >/dev/null || missing="$$missing g++"; \
	command -v cmake >/dev/null || missing="$$missing cmake"; \
	test -e "$$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" || missing="$$missing python3-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  case "$$missing" in *prometheus-alertmanager*) \
	    echo "Stopping the system's own Alertmanager: tests and the demo run their own, project-local"; \
	    { $$SUDO systemctl disable --now prometheus-alertmanager 2>/dev/null || $$SUDO service prometheus-alertmanager stop 2>/dev/null; } >/dev/null || true;; \
	  esac; \
	  case "$$missing" in *mariadb-server*) \
	    echo "Stopping the system's own MariaDB: tests run their own, project-local"; \
	    { $$SUDO systemctl disable --now mariadb 2>/dev/null || $$SUDO service mariadb stop 2>/dev/null; } >/dev/null || true;; \
	  esac; \
	fi

.venv/.installed: requirements.txt requirements-dev.txt requirements-nodeps.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	$(PY) deploy/local/venv_sync.py
	touch $@

venv: .venv/.installed ## Create the project virtualenv (.venv) from the pinned requirements

static/vendor/VERSIONS: package-lock.json deploy/local/vendor-assets deploy/local/editor/yaml-editor.js
	npm ci --no-audit --no-fund --loglevel=error
	deploy/local/vendor-assets

assets: static/vendor/VERSIONS ## Install front-end packages from npm and copy them to static/vendor

messages: venv ## Compile the translation catalogs
	$(MANAGE) compilemessages -l zh_Hans --ignore=.venv --ignore=node_modules >/dev/null

static: venv assets ## Collect static files for WhiteNoise
	$(MANAGE) collectstatic --noinput -v 0

deps: system-packages venv assets messages static ## Everything the console needs installed

services: system-packages ## Start the project-local PostgreSQL and Redis (.run/)
	deploy/local/services up

lint: venv ## ruff lint and format check, migrations check, import layers (import-linter, pyproject.toml)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	$(MANAGE) makemigrations --check --dry-run >/dev/null
	.venv/bin/lint-imports

image: deps ## Build the console's OCI image without a daemon (deploy/image: mmdebstrap, crane), into .run/image
	deploy/image/build

bundle: deps agent-build ## Build the offline install bundle (.run/bundle/kubemate-<version>-<commit>-linux-x86_64-py311.tar.gz)
	deploy/sandbox/build --only helm >/dev/null
	deploy/bundle/build --image-layout "$$(deploy/image/build)"

helm-lint: ## Lint the Helm chart (Helm v4.3.2, built with the sandbox's tools and cached by version)
	deploy/sandbox/build --only helm >/dev/null
	$$(deploy/sandbox/build --print-paths | sed -n 's/^HELM=//p') lint --strict deploy/helm/kubemate --set existingSecret=kubemate-secrets

format: venv ## Apply ruff fixes and formatting
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

test: deps services lint sandbox-build decrypt-build agent-build agent-test ai-build ## Run ruff and the whole test suite (starts PostgreSQL, Redis and a sandbox cluster)
	$(PY) tests/shards.py

agent-build: ## Build the static host agent (agent/, cached by version under ~/.cache/kubemate/agent)
	agent/build.sh

agent-test: ## gofmt, go vet and the Go tests of the host agent
	agent/test.sh

ai-build: system-packages ## Build the local model server (llama.cpp from source), its model and Milvus Lite (deploy/ai, cached by version)
	deploy/ai/build

decrypt-build: ## Build kubemate-decrypt, the in-pod decryption step (cached by version under ~/.cache/kubemate)
	deploy/decrypt/build

demo: deps services ai-build ## Start the console on a local sandbox cluster with demo data
	$(MANAGE) migrate --noinput -v 0
	$(SANDBOX_DIR)up --name demo --nodes $(SANDBOX_NODES) --demo
	$(MANAGE) register_sandbox .run/sandbox/demo/kubeconfig --name sandbox
	$(MANAGE) demo_admin
	deploy/local/demo up
	$(MANAGE) demo_data --cluster sandbox --prometheus-url http://127.0.0.1:$$(cat .run/demo/prometheus.port) \
	  --alertmanager-url http://127.0.0.1:$$(cat .run/demo/alertmanager.port) \
	  --logs-url http://127.0.0.1:$$(cat .run/demo/victoria-logs.port) --jaeger-url http://127.0.0.1:$$(cat .run/demo/jaeger.port)
	$(PY) deploy/local/demo_telemetry.py --run .run/sandbox/demo --logs-url http://127.0.0.1:$$(cat .run/demo/victoria-logs.port) \
	  --otlp http://127.0.0.1:$$(cat .run/demo/jaeger-otlp.port)
	$(MANAGE) demo_inspection --cluster sandbox --agent-port $$(cat .run/demo/agent.port) --agent-token-file .run/demo/agent-token
	KUBEMATE_CICD_LOCAL_GIT=true $(MANAGE) demo_cicd --cluster sandbox --registry 127.0.0.1:$$(cat .run/demo/registry.port)
	$(MANAGE) demo_backups --cluster sandbox --env-file .run/backups/env \
	  --etcd $$(sed -n 's/^KUBEMATE_SANDBOX_ETCD=//p' .run/sandbox/demo/env)
	set -a; . .run/ai/env; set +a; $(MANAGE) demo_ai --cluster sandbox
	$(MANAGE) demo_compliance --cluster sandbox --syslog-port $$(cat .run/demo/rsyslog.port)

stop: ## Stop the demo console, its sandbox cluster, PostgreSQL and Redis
	deploy/local/demo down
	-$(SANDBOX_DIR)down --name demo
	deploy/local/services down

status: ## Show what is running
	@deploy/local/demo status; deploy/local/services status; $(SANDBOX_DIR)status --name demo || true
