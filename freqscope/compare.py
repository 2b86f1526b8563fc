"""``freqscope compare``'s statistics (issue 18), one import for both modes: sets of clips through their rows
(:mod:`freqscope.compare_sets`: per-band Δ dB, temporal spectrum, heat map and distance with bootstrap CIs,
findings) and frame-aligned pairs through their frames (:mod:`freqscope.compare_pairs`: gain, coherence and PSNR
per band, error per frame, row and column). Pure functions; the job, reports and CLI are elsewhere.
"""

from __future__ import annotations

from .compare_pairs import PEAK, PairAccumulator, PairComparison, compare_pairs, psnr_db
from .compare_sets import CI, FINDING_DB, N_BOOT, REGIONS, SEED, Region, SetComparison, compare_sets

__all__ = ["SetComparison", "compare_sets", "PairComparison", "compare_pairs", "psnr_db", "Region", "REGIONS"]
__all__ += ["PairAccumulator", "N_BOOT", "SEED", "CI", "FINDING_DB", "PEAK"]
