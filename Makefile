# pyg_recsys: `make demo`, `make test`, `make bench`, `make report`.
# The virtual environment is created on first use; torch is pinned to the
# CPU wheel, torch-scatter/torch-sparse come from ../shared/wheels when
# present and are compiled from source otherwise.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
WHEELS ?= ../shared/wheels
SHARED_DATA := $(abspath ../shared/datasets)
# Staged read-only copies of the raw datasets, when this checkout has them.
ifneq ($(wildcard $(SHARED_DATA)),)
export PYG_RECSYS_DATA ?= $(SHARED_DATA)
endif
DEMO_OUT ?= runs/demo

.PHONY: demo test test-all bench bench-session report lint install clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet '$(TORCH)'
	if [ -d '$(WHEELS)' ] && ls '$(WHEELS)'/torch_s*.whl >/dev/null 2>&1; then \
	  $(BIN)/python -m pip install --quiet --find-links '$(WHEELS)' \
	    torch-scatter==2.1.2 torch-sparse==0.6.18; \
	else \
	  $(BIN)/python -m pip install --quiet setuptools wheel && \
	  $(BIN)/python -m pip install --quiet --no-build-isolation \
	    torch-scatter torch-sparse; \
	fi
	$(BIN)/python -m pip install --quiet -e '.[full,serve,test]'
	touch $@

demo: install
	$(BIN)/pyg-recsys train --model lightgcn --dataset movielens-100k \
	  --epochs 60 --lr 5e-3 --eval-every 5 --patience 4 --out $(DEMO_OUT) \
	  --resume
	$(BIN)/pyg-recsys recommend --run $(DEMO_OUT) --user 1 --k 10

test: install
	$(BIN)/python -m pytest -q

test-all: install
	$(BIN)/python -m pytest -q -m ''

bench: install
	$(BIN)/python benchmarks/eval_speed.py
	$(BIN)/python benchmarks/lightgcn_gowalla.py
	$(BIN)/python benchmarks/cf_movielens.py

# session models: speed against RecBole 1.2.1 (its own venv, made by the
# peer script), quality against the published Yoochoose 1/64 figures
bench-session: install
	bash ../shared/peers/recbole_env.sh
	$(BIN)/python benchmarks/session_speed_beauty.py
	$(BIN)/python benchmarks/session_quality.py --dataset yoochoose1_64 \
	  --epochs 3

# the README's result tables, results/*.md and the Gowalla plots, rebuilt
# from benchmarks/results/*.json (no benchmark runs)
report: install
	$(BIN)/python benchmarks/report.py

lint: install
	$(BIN)/ruff check pyg_recsys tests benchmarks examples

clean:
	rm -rf $(VENV) build *.egg-info
