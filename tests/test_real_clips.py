"""The finding freqscope exists to show, on real clips: low bands keep SNR at the last timestep."""

import pytest
import torch

from freqscope.analysis import analyze_video
from freqscope.encode import PixelEncoder
from freqscope.noise_schedule import get_schedule


@pytest.mark.parametrize("clip", ["bikes", "bunny"])
@pytest.mark.parametrize("preset", ["sd", "animatediff"])
def test_low_bands_far_above_high_bands_at_last_timestep(clip, preset, request):
    path = request.getfixturevalue(clip)
    res = analyze_video(path, PixelEncoder(downsample=4), get_schedule(preset), frames=16, size=128)
    db = res.snr.snr_db  # (bands, 1000)
    # DC and the lowest band sit far above the highest band at t = 999 (natural-video spectra fall steeply).
    assert db[0, 999] > db[-1, 999] + 30
    assert db[1, 999] > db[-1, 999] + 20
    # (No absolute level is asserted: DC power is N·mean², so it grows with the size of the latent.)
    # every band's SNR falls with t
    assert torch.all(torch.diff(db, dim=1) < 0)
    # power falls from band to band
    assert torch.all(torch.diff(res.snr.power) < 0)
