# The two commands of the README:  `make demo` runs the platform locally, `make test` runs every test.
# Both install what they need first (a virtualenv from requirements.lock, Azurite from package-lock.json).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
# The infrastructure checks' tools, each in its own virtualenv: checkov and kubernetes-validate pin versions that
# Airflow's packages conflict with, and checkov's fork of python-hcl2 would shadow python-hcl2 itself.
IAC_VENV := .venv-iac
HCL_VENV := .venv-hcl
# The dependency audit's tool (pip-audit), kept out of the environments it audits.
AUDIT_VENV := .venv-audit
UV_VERSION := $(shell sed -n 's/^uv==\([0-9.]*\).*/\1/p' requirements.lock)
RUN := $(VENV)/bin/python
export UV_COMPILE_BYTECODE := 1

.PHONY: audit demo up down status replication-status failover-status region-down region-up backup restore install lint test test-fast bench bench-failover bench-health-scale bench-lifecycle bench-cost bench-control-plane load-test lock clean

demo up: install
	@$(RUN) -m localdev up

down:
	@if [ -x $(VENV)/bin/python ]; then $(RUN) -m localdev down; else echo "Nothing was running."; fi

status:
	@$(RUN) -m localdev status

# Replication status of every model version in every region (reads the local platform's connections).
replication-status:
	@set -a; . ./.local/connections.env; $(RUN) -m include.replication status

failover-status:
	@set -a; . ./.local/connections.env; $(RUN) -m include.failover status

region-down region-up:   # make region-down REGION=azure-eastus
	@$(RUN) -m localdev $@ $(REGION)

# The local platform's state to .local/backups/<UTC time>/ (docs/control-plane.md): the state database as a logical
# dump, Airflow's metadata database (SQLite's online backup, or pg_dump -Fc in the production topology) and
# secrets.json, whose Fernet key the metadata database's secrets are encrypted with. `make restore
# FROM=.local/backups/<time>` puts all three back, with the platform stopped (make down).
BACKUP_DIR := .local/backups/$(shell date -u +%Y%m%dT%H%M%SZ)
AIRFLOW_DB_URL = $(if $(filter production,$(shell cat .local/topology 2>/dev/null)),$(or $(MLP_POSTGRES_URL),postgresql+psycopg2://postgres@127.0.0.1:5432)/$(or $(MLP_AIRFLOW_DB),mlp_airflow),sqlite:///$(CURDIR)/.local/airflow/airflow.db)

backup:
	@test -f .local/connections.env || { echo "error: no local platform in .local to back up; run make demo first"; exit 1; }
	@mkdir -p -m 700 $(BACKUP_DIR)
	@set -a; . ./.local/connections.env; $(RUN) -m include.state backup --to $(BACKUP_DIR)/state.jsonl.gz
	@$(RUN) -m include.state backup-airflow-db --url '$(AIRFLOW_DB_URL)' --to $(BACKUP_DIR)/airflow-metadata.backup
	@install -m 600 .local/secrets.json $(BACKUP_DIR)/secrets.json
	@echo "Backed up to $(BACKUP_DIR); restore with: make down && make restore FROM=$(BACKUP_DIR)"

restore:
	@test -n "$(FROM)" || { echo "error: say which backup: make restore FROM=.local/backups/<time>"; exit 1; }
	@test -f $(FROM)/state.jsonl.gz -a -f $(FROM)/airflow-metadata.backup || { echo "error: $(FROM) is not a make backup folder (no state.jsonl.gz and airflow-metadata.backup)"; exit 1; }
	@test -f .local/connections.env || { echo "error: no local platform in .local to restore into; run make demo, then make down"; exit 1; }
	@! $(RUN) -m localdev status | grep -q 'running, PID' || { echo "error: the platform is running; stop it first (make down)"; exit 1; }
	@set -a; . ./.local/connections.env; $(RUN) -m include.state restore --from $(FROM)/state.jsonl.gz --replace
	@$(RUN) -m include.state restore-airflow-db --url '$(AIRFLOW_DB_URL)' --from $(FROM)/airflow-metadata.backup
	@install -m 600 $(FROM)/secrets.json .local/secrets.json
	@echo "Restored $(FROM); start the platform with make up"

# promtool from Debian's prometheus package (2.42), unpacked without installing it (which would start a server);
# tests/monitoring checks the alert rules with it (docs/monitoring.md).
PROMTOOL := .venv-tools/bin/promtool
$(PROMTOOL):
	rm -rf .venv-tools/deb && mkdir -p .venv-tools/deb .venv-tools/bin
	cd .venv-tools/deb && { apt-get download prometheus || { apt-get update -q >/dev/null && apt-get download prometheus; }; }
	dpkg -x .venv-tools/deb/prometheus_*.deb .venv-tools/deb/root
	install -m 755 .venv-tools/deb/root/usr/bin/promtool $@
	rm -rf .venv-tools/deb

install: $(VENV)/.installed node_modules/.installed $(IAC_VENV)/.installed $(HCL_VENV)/.installed $(PROMTOOL)

$(VENV)/.installed: requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if (3, 11, 3) <= v[:3] < (3, 12) else \
		f"error: Python 3.11.3 or newer 3.11 is needed, found {sys.version.split()[0]} at {sys.executable}; set PYTHON=/path/to/python3.11")'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip sync --quiet --python $(VENV)/bin/python requirements.lock
	# The platform's own packages, editable, with its Airflow plugins' entry points (built with the locked setuptools).
	$(VENV)/bin/uv pip install --quiet --python $(VENV)/bin/python --no-deps --no-build-isolation --editable .
	touch $@

$(IAC_VENV)/.installed: requirements-iac.lock $(VENV)/.installed
	test -x $(IAC_VENV)/bin/python || $(PYTHON) -m venv $(IAC_VENV)
	$(VENV)/bin/uv pip sync --quiet --python $(IAC_VENV)/bin/python requirements-iac.lock
	touch $@

$(HCL_VENV)/.installed: requirements-hcl.lock $(VENV)/.installed
	test -x $(HCL_VENV)/bin/python || $(PYTHON) -m venv $(HCL_VENV)
	$(VENV)/bin/uv pip sync --quiet --python $(HCL_VENV)/bin/python requirements-hcl.lock
	touch $@

$(AUDIT_VENV)/.installed: requirements-audit.lock $(VENV)/.installed
	test -x $(AUDIT_VENV)/bin/python || $(PYTHON) -m venv $(AUDIT_VENV)
	$(VENV)/bin/uv pip sync --quiet --python $(AUDIT_VENV)/bin/python requirements-audit.lock
	touch $@

# Every pin of the four lock files against PyPI's vulnerability data (docs/ci-checks.md, "Dependency audit").
# AUDIT_ARGS=--allow-unreachable turns "the data is out of reach from here" into a warning.
audit: $(AUDIT_VENV)/.installed
	$(AUDIT_VENV)/bin/python .ci/audit.py $(AUDIT_ARGS) requirements.lock requirements-iac.lock requirements-hcl.lock requirements-audit.lock

node_modules/.installed: package.json package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "error: Node.js and npm are needed \
		for Azurite, the local Azure region. Install Node.js 18+ with npm (Debian: apt-get install nodejs npm)."; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check dags plugins include localdev tests benchmarks .ci
	$(VENV)/bin/ruff format --check dags plugins include localdev tests benchmarks .ci

# Two pytest runs side by side, to fit CI's 30 minutes on two cores: the end-to-end tests and benchmarks,
# which mostly wait on Airflow's timers, in the background (their output follows when they end), and every
# other test in the foreground. Each test still runs alone in its own run; both must pass (a run that a
# PYTEST_ARGS selection leaves empty, pytest's status 5, passes unless both are empty).
SLOW_TESTS := tests/e2e tests/benchmarks

test: install lint
	@slow_log=$$(mktemp); \
	$(RUN) -m pytest $(SLOW_TESTS) $(PYTEST_ARGS) > "$$slow_log" 2>&1 & slow=$$!; \
	$(RUN) -m pytest $(foreach dir,$(SLOW_TESTS),--ignore=$(dir)) $(PYTEST_ARGS); rest=$$?; \
	wait $$slow; slow_status=$$?; \
	echo "=== $(SLOW_TESTS) ==="; cat "$$slow_log"; rm -f "$$slow_log"; \
	case "$$rest $$slow_status" in "0 0"|"0 5"|"5 0") ;; *) exit 1 ;; esac

# Unit tests and DAG integrity only (no emulators, no Airflow servers).
test-fast: install lint
	$(RUN) -m pytest -m "not integration and not e2e" $(PYTEST_ARGS)

# docs/images/platform-view.png, the README's screenshot, from the Platform view's integration test (docs/platform-view.md).
.PHONY: platform-screenshot
platform-screenshot: install
	MLP_PLATFORM_SCREENSHOT=$(CURDIR)/docs/images/platform-view.png $(RUN) -m pytest -q -p no:cacheprovider tests/integration/test_platform_view.py

# Replication against rclone on the local clouds (needs rclone: apt-get install rclone).
# BENCH_ARGS="--size-mib 256" or "--sizes 64,256,1024" (ours alone, peak RSS per size).
bench: install
	$(RUN) benchmarks/replication.py $(BENCH_ARGS)

bench-failover: install   # needs the platform up: make demo
	$(RUN) benchmarks/failover.py $(BENCH_ARGS)

# The health loop over 30 generated regions, each its own serving process (needs nothing up; about 3 minutes and
# 7.5 GiB of RAM at 30 regions, 250 MiB per region).
# BENCH_ARGS="--regions 60" or "--seconds 120 --interval 1".
bench-health-scale: install
	$(RUN) benchmarks/health_scale.py $(BENCH_ARGS)

bench-lifecycle: install   # needs the platform up: make demo
	$(RUN) benchmarks/lifecycle.py $(BENCH_ARGS)

# Locust against the three serving processes, steady and while one region fails over (about 4 minutes with the
# local catalogue's 60 s TTL). BENCH_ARGS="--users 50", "--no-failover" or "--region gcp-europe-west1".
load-test: install   # needs the platform up: make demo
	$(RUN) benchmarks/load_test.py $(BENCH_ARGS)

bench-cost: install
	$(RUN) benchmarks/cost.py $(BENCH_ARGS)

# From a state backup to a control plane that has taken over, on fresh SQLite databases (needs nothing up; it
# starts its own emulators and Airflow on free loopback ports). BENCH_ARGS="--backup FILE" or "--versions 5000".
bench-control-plane: install
	$(RUN) benchmarks/control_plane.py $(BENCH_ARGS)

# Re-resolve the pins after changing requirements*.txt (about a minute with uv). The known-good freeze
# constrains everything except boto3/botocore/s3transfer: aiobotocore (the async SQS watcher) pins an
# older botocore than the freeze has.
lock: $(VENV)/.installed
	grep -vE '^(boto3|botocore|s3transfer)==' ../shared/known-good-freeze.txt > .venv/freeze-constraints.txt
	$(VENV)/bin/uv pip compile requirements-dev.txt -c .venv/freeze-constraints.txt \
		--python-version 3.11.7 --annotation-style line -q -o requirements.lock
	$(VENV)/bin/uv pip compile requirements-iac.txt --python-version 3.11.7 --annotation-style line -q -o requirements-iac.lock
	$(VENV)/bin/uv pip compile requirements-hcl.txt --python-version 3.11.7 --annotation-style line -q -o requirements-hcl.lock
	$(VENV)/bin/uv pip compile requirements-audit.txt --python-version 3.11.7 --annotation-style line -q -o requirements-audit.lock

clean: down
	rm -rf .local
