# The front door: `make chat` and `make test` work on a fresh clone with nothing installed by hand.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: chat test eval bench kbcheck setup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# `make chat` chats on ./helpdesk.db with the demo agency seeded (idempotent); `make chat HOLDER=S0001` chats
# as that demo holder, already linked.
HOLDER ?=
chat: $(STAMP)
	@$(PY) -m bot demo seed --quiet
	$(PY) -m bot chat $(if $(HOLDER),--as $(HOLDER))

test: $(STAMP)
	$(PY) -m pytest -n auto

eval: $(STAMP)
	$(PY) -m bot.eval

bench: $(STAMP)
	$(PY) bench/run.py

kbcheck: $(STAMP)
	$(PY) -m bot kb check

clean:
	rm -rf $(VENV) build *.egg-info
