# Two commands to start: `make demo` (the whole mission on synthetic galaxies) and `make test`.
# Both create/refresh the virtual environment .venv from requirements.txt first (a second run installs nothing).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
VISDOM_PORT ?= 8097

.PHONY: venv demo test paper-weights visdom visdom-static bench clean-demo

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	# visdom 0.2.4 (newest for Python 3.11) builds with the legacy setup.py: setuptools<81, no build isolation
	$(PY) -m pip install -q 'setuptools<81' wheel
	$(PY) -m pip install -q --no-build-isolation -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(PY) demo.py

test: venv
	$(PY) -m pytest -q tests

paper-weights: venv
	$(PY) get_paper_weights.py

bench: venv
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_score.py
	$(PY) benchmarks/bench_data.py
