# The two commands: `make run` (the product, on SQLite and the local Klaviyo
# sandbox) and `make test` (the suite). Both set up what they need first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test install lint format browser benchmark clean

$(INSTALLED): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(INSTALLED)

install: $(INSTALLED)

# The browser tests drive Debian's chromium; Playwright's own download of a
# browser is not used.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
		|| { [ "$$(id -u)" = 0 ] && apt-get install -y -q chromium >/dev/null; } \
		|| echo "chromium is not installed: the browser tests will be skipped (apt-get install chromium)."

# The site on :8000, the Klaviyo sandbox on :8765, a worker cluster and live
# simulated traffic, on the SQLite file var/db.sqlite3.
run: install
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py seed_demo
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho --procfile Procfile --env demo.env start

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Production settings must pass Django's deployment checklist.
DEPLOY_ENV := DEBUG=false ALLOWED_HOSTS=example.com \
	SECRET_KEY=check-deploy-only-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJ \
	ENCRYPTION_KEYS=Y2hlY2stZGVwbG95LW9ubHktMzItYnl0ZXMta2V5eHg= \
	KLAVIYO_CLIENT_ID=check KLAVIYO_CLIENT_SECRET=check

test: install browser lint
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(DEPLOY_ENV) $(BIN)/python manage.py check --deploy --fail-level WARNING
	$(BIN)/pytest

benchmark: install
	$(BIN)/python manage.py benchmark_export --json

clean:
	rm -rf $(VENV) var test-artifacts
