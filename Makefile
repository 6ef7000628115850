# One-command set-up: `make demo` and `make test` build the virtualenv on first use.
# torch is pinned here and only here; it is installed first so nothing pulls a CUDA build.
# For a GPU build: make setup TORCH_SPEC='torch==2.13.0' TORCH_PIP_ARGS='--index-url <PyTorch CUDA wheel index>'
PYTHON ?= python3.11
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
PY := $(VENV)/bin/python
STAMP := $(VENV)/.streamrec-installed

.PHONY: setup demo test bench bench-overload clean

$(STAMP): pyproject.toml setup.py Makefile
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)" $(TORCH_PIP_ARGS)
	$(PY) -m pip install --quiet -e '.[embedded,test]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/streamrec demo

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

bench: setup
	$(PY) bench/stateful_stage.py --processes 2
	$(PY) bench/run_all.py

# ~8 minutes on 2 shared cores: 2 M clicks over 100,000 and over 1,000 sessions (docs/benchmarks.md)
bench-overload: setup
	$(PY) bench/overload.py

clean:
	rm -rf $(VENV) .streamrec reports
