# One command for the demo, one for the tests; both set up the environment first.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
TORCH   := torch==2.14.1 torchvision==0.29.1
STAMP   := $(VENV)/.installed

.PHONY: setup demo test test-fast bench clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev,yolo]'
	$(BIN)/pip install -q 'ray[tune]>=2.9' 'optuna>=3.5'  # the tune extra, for tests/tune (~45 s)
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# The report tests drive Debian's chromium through playwright (its own browser download needs the network).
browser: $(STAMP)
	test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium) \
		|| echo "chromium not installed (needs root: sudo apt-get install -y chromium); the browser tests skip"
	$(BIN)/python -c "import playwright" 2>/dev/null || $(BIN)/pip install -q playwright

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

bench: $(STAMP)
	$(BIN)/python scripts/bench/bench_eval.py
	$(BIN)/python scripts/bench/bench_convert.py

clean:
	rm -rf $(VENV) work_dirs/* demo_data .pytest_cache
