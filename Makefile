# Two commands to start: `make demo` (the whole mission on synthetic galaxies) and `make test`.
# Both create/refresh the virtual environment .venv from requirements.txt first (a second run installs nothing).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
VISDOM_PORT ?= 8097

.PHONY: venv demo test paper-weights visdom visdom-static bench notebooks lab clean-demo

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

# re-runs the benchmark scripts and rewrites docs/benchmarks.md from their output;
# BENCH="ladder demo" picks others (python tools/bench_report.py --list)
BENCH ?=
bench: venv
	$(PY) tools/bench_report.py $(BENCH)

# executes the three notebooks headless with a real kernel, outputs saved in place
NOTEBOOKS := test.ipynb explore_features.ipynb paper_plots.ipynb
notebooks: venv
	$(VENV)/bin/jupyter execute --inplace --timeout=1200 $(NOTEBOOKS)

# opens the notebooks in JupyterLab (http://localhost:8888, bound to 127.0.0.1)
lab: venv
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 $(NOTEBOOKS)
