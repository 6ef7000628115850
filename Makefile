# One-command set-up: `make demo` and `make test` build the virtualenv on first use.
# torch is pinned here and only here; it is installed first so nothing pulls a CUDA build.
# For a GPU build: make setup TORCH_SPEC='torch==2.13.0' TORCH_PIP_ARGS='--index-url <PyTorch CUDA wheel index>'
PYTHON ?= python3.11
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
PY := $(VENV)/bin/python
STAMP := $(VENV)/.streamrec-installed

.PHONY: setup demo test lint bench bench-continual bench-overload clean

$(STAMP): pyproject.toml setup.py Makefile
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)" $(TORCH_PIP_ARGS)
	$(PY) -m pip install --quiet -e '.[embedded,test,lint]'
	@# The dashboard test drives Debian's chromium (no browser download); best effort, as root only.
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "note: chromium not installed (needs root + apt-get); the dashboard test will be skipped"; }
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/streamrec demo

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

# ruff on everything, mypy on the package (settings in pyproject.toml). mypy cannot follow setup.py's
# folder mapping, so the package is laid out as installed, as links under build/mypy (its mypy_path),
# and the links in its messages are mapped back to the files.
LINT_PATHS := streamrec stream state models config tests bench setup.py
MYPY_TREE := build/mypy
lint: setup
	$(VENV)/bin/ruff check --no-cache $(LINT_PATHS)
	@rm -rf $(MYPY_TREE) && mkdir -p $(MYPY_TREE)/streamrec
	@for f in streamrec/*.py; do ln -s "$(CURDIR)/$$f" $(MYPY_TREE)/streamrec/; done
	@for d in stream state models config; do ln -s "$(CURDIR)/$$d" $(MYPY_TREE)/streamrec/$$d; done
	@$(VENV)/bin/mypy --cache-dir build/mypy-cache > $(MYPY_TREE)/report.txt; status=$$?; \
	  sed -e 's#^$(MYPY_TREE)/streamrec/\(stream\|state\|models\|config\)/#\1/#' \
	      -e 's#^$(MYPY_TREE)/streamrec/#streamrec/#' $(MYPY_TREE)/report.txt; exit $$status

bench: setup
	$(PY) bench/stateful_stage.py --processes 2
	$(PY) bench/run_all.py

DATA ?= ../shared/data
CONTINUAL_RATE ?= 50

# Continual learning vs its frozen twin and the online kNN (docs/benchmarks.md): YooChoose-100k
# when $(DATA) holds it (warm-up model trained on train, test judged at $(CONTINUAL_RATE) clicks/s),
# then the synthetic stream with new items (the figures issue 11 asks for).
bench-continual: setup
	@if [ -f $(DATA)/yoochoose-100k.train.tsv ]; then \
	  $(PY) bench/continual.py --format yoochoose --warm $(DATA)/yoochoose-100k.train.tsv \
	    --dataset $(DATA)/yoochoose-100k.test.tsv --rate $(CONTINUAL_RATE) --train-seconds 180 --out reports/continual; \
	else echo "no $(DATA)/yoochoose-100k.*.tsv (set DATA=...): YooChoose part skipped"; fi
	$(PY) bench/continual.py --train-seconds 120 --rate 100 --out reports/continual-synthetic

# ~8 minutes on 2 shared cores: 2 M clicks over 100,000 and over 1,000 sessions (docs/benchmarks.md)
bench-overload: setup
	$(PY) bench/overload.py

clean:
	rm -rf $(VENV) .streamrec reports
