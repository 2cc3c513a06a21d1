# The two commands a newcomer needs:  `make demo`  and  `make test`.
# Everything else (virtual environment, packages, database) is set up on the way.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint lock bench messages

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

# Other ports: make demo DEMO_ARGS="--port 9000 --emulator-port 9400"
demo: $(VENV)/.installed
	$(PY) -m tenantlink.demo $(DEMO_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=true $(PY) manage.py makemigrations --check --dry-run  # DEBUG: no keys needed to read models

# Unit, integration and emulator tests on SQLite, then the portal's tests again plus the
# end-to-end and browser tests on a PostgreSQL server that the run starts and removes itself.
test: lint
	$(PY) -m pytest -m "not e2e"
	$(PY) -m tests.postgres -- $(PY) -m pytest tenantlink tests

bench: $(VENV)/.installed
	$(PY) -m bench

# After changing or adding a translatable string: update the Swedish and Finnish catalogues
# (tenantlink/locale/*/LC_MESSAGES/django.po), translate what is new, then run it again to
# compile the .mo files that are committed beside them. Needs GNU gettext (msgfmt, xgettext).
messages: $(VENV)/.installed
	cd tenantlink && DEBUG=true ../$(PY) ../manage.py makemessages --locale sv --locale fi --no-obsolete --add-location file --ignore "tests/*" --ignore "*/tests/*"
	cd tenantlink && DEBUG=true ../$(PY) ../manage.py compilemessages --locale sv --locale fi

lock:
	$(PYTHON) -m venv /tmp/tenantlink-lock && /tmp/tenantlink-lock/bin/pip install --quiet -r requirements.in
	{ echo "# Pinned by \`make lock\` from requirements.in. Do not edit by hand."; /tmp/tenantlink-lock/bin/pip freeze; } > requirements.txt
	rm -rf /tmp/tenantlink-lock
