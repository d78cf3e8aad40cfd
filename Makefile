# Two set-up-free entry points: `make demo` and `make test`.
# Each creates .venv on first run and reinstalls when pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo lint typecheck pytest bench clean readme

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "srs-agents needs Python 3.11 or newer; set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check agents tests bench tools
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check agents tests bench tools

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/python -m tests.standin.demo

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) demo-sandbox .mypy_cache .ruff_cache .pytest_cache

# Regenerate README's configuration reference from agents/settings.py.
readme: $(STAMP)
	$(BIN)/python -c 'import re,sys,subprocess; \
	ref=subprocess.run([sys.executable,"-m","agents.settings"],capture_output=True,text=True,check=True).stdout; \
	b="<!-- BEGIN settings reference (make readme) -->\n"; e="<!-- END settings reference -->"; \
	t=open("README.md").read(); head,rest=t.split(b,1); tail=rest.split(e,1)[1]; \
	open("README.md","w").write(head+b+"\n"+ref+"\n"+e+tail)'
