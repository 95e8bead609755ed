# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 7860

.PHONY: install demo test notebooks clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m workbench app --host $(HOST) --port $(PORT)

test: install
	WORKBENCH_SMOKE=1 $(PY) -m pytest

notebooks: install
	$(PY) -m jupyter lab notebooks/

clean:
	rm -rf runs/ .pytest_cache
