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

test: venv visdom-static
	$(PY) -m pytest -q tests

# visdom's web files (jquery, react, plotly, ...) from the npm registry at the versions visdom names:
# the server then starts offline instead of trying CDNs; nothing third-party is committed here
visdom-static: venv
	$(PY) tools/visdom_setup.py

# the dashboard at http://localhost:$(VISDOM_PORT), bound to 127.0.0.1 only
visdom: visdom-static
	$(PY) tools/visdom_server.py --port $(VISDOM_PORT)

paper-weights: venv
	$(PY) get_paper_weights.py

bench: venv
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_score.py
	$(PY) benchmarks/bench_data.py
