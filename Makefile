# One command for the demo, one for the tests; both set up the environment first.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
TORCH   := torch==2.14.1 torchvision==0.29.1
STAMP   := $(VENV)/.installed

# Detectron2 has no wheel: built once from the vendored source, the wheel kept under .venv/wheels/ (per torch)
D2_TARBALL ?= ../shared/vendor/detectron2-02b5c4e2.tar.gz
D2_WHEELS  := $(VENV)/wheels/$(basename $(basename $(notdir $(D2_TARBALL))))-$(subst ==,-,$(word 1,$(TORCH)))
D2_STAMP   := $(D2_WHEELS)/.installed

.PHONY: setup demo test test-stress test-fast bench clean browser detectron2

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev,yolo,export,tune]'  # tune: ray + optuna (~45 s), for tests/tune
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
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest -q -n 2 -m "not stress" --durations=15

test-stress: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m stress --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

bench: $(STAMP)
	$(BIN)/python scripts/bench/bench_eval.py
	$(BIN)/python scripts/bench/bench_convert.py

detectron2: $(D2_STAMP)

$(D2_STAMP): $(STAMP) $(D2_TARBALL)
	$(BIN)/pip install -q 'setuptools>=77.0.3,<81' wheel ninja
	ls $(D2_WHEELS)/detectron2-*.whl >/dev/null 2>&1 || \
		$(BIN)/pip wheel -q --no-build-isolation --no-deps $(D2_TARBALL) -w $(D2_WHEELS)
	$(BIN)/pip install -q $(D2_WHEELS)/detectron2-*.whl
	touch $(D2_STAMP)

clean:
	rm -rf $(VENV) work_dirs/* demo_data .pytest_cache
