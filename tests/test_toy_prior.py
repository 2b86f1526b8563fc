"""A prior added from outside the package: defined and registered here alone, then run from the library
(``sample``) and from the CLI (``freqscope freeinit --prior toy``), its own option made a flag from the
registry. No package file names it."""

import json
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import write_clip
from freqscope.cli import main
from freqscope.freeinit import PRIORS, DenoiserSampler, Prior, register_prior, sample
from freqscope.noise import gaussian_noise
from freqscope.reference import GaussianVideoModel
from freqscope.scheduler_adapter import reference_scheduler


class CountSteps:
    """The toy's observer: counts the steps of the pass it watches."""

    def __init__(self) -> None:
        self.steps = 0

    def __call__(self, d: dict) -> None:
        self.steps += d["stage"] == "step"


@dataclass
class Toy(Prior):
    """Scaled Gaussian noise; later passes: the last result re-diffused to the start level (no filter),
    times the number of steps the pass before ran, as its observer counted them."""

    name = "toy"
    iterates = True

    toy_scale: float = field(default=0.5, metadata={"help": "standard deviation of the toy's first noise"})

    def first_noise(self, shape, ctx):
        return self.toy_scale * gaussian_noise(shape, generator=ctx.generator, device=ctx.device)

    def observer(self, scheduler, levels, start_index, init):
        return CountSteps()

    def reinit(self, r):
        z_t = math.sqrt(r.alpha_bar) * r.latents + math.sqrt(1 - r.alpha_bar) * r.eps
        return z_t * r.observed.steps


@pytest.fixture
def toy():
    register_prior(Toy)
    yield Toy
    del PRIORS["toy"]


def test_toy_prior_from_the_library(toy):
    z0 = torch.randn(1, 2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    sampler = DenoiserSampler(GaussianVideoModel.from_latent(z0), reference_scheduler("sd"))
    res = sample(sampler, (1, 2, 4, 8, 8), prior="toy", num_iters=2, num_inference_steps=3,
                 generator=torch.Generator().manual_seed(1))
    assert [p.index for p in res.passes] == [0, 1] and res.prior == Toy()
    first = gaussian_noise((1, 2, 4, 8, 8), generator=torch.Generator().manual_seed(1))
    assert torch.equal(res.passes[0].init, 0.5 * first)  # the toy's own noise, its default option
    p0, p1 = res.passes
    expected = math.sqrt(p1.alpha_bar) * p0.latents + math.sqrt(1 - p1.alpha_bar) * p0.init  # renoise="reuse"
    torch.testing.assert_close(p1.init, expected * 3)  # the observer saw the 3 steps of pass 0
    assert list(res.info)[-2:] == ["notes", "toy_scale"] and res.info["toy_scale"] == 0.5
    assert res.info["prior"] == "toy" and res.info["num_iters"] == 2
    # A prior object carries its options.
    big = sample(sampler, (1, 2, 4, 8, 8), prior=Toy(toy_scale=2.0), num_iters=1, num_inference_steps=3,
                 generator=torch.Generator().manual_seed(1))
    assert torch.equal(big.passes[0].init, 2.0 * first) and big.info["toy_scale"] == 2.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    frames = np.random.default_rng(0).integers(0, 256, (8, 32, 48, 3), dtype=np.uint8)
    return write_clip(tmp_path_factory.mktemp("toy") / "noise.mp4", frames)


def test_toy_prior_from_the_cli(toy, clip, tmp_path):
    runner = CliRunner()
    help_text = runner.invoke(main, ["freeinit", "--help"]).output
    assert "toy" in re.search(r"--prior \[(.*?)\]", help_text)[1].split("|")  # a choice of --prior
    assert "--toy-scale FLOAT" in help_text and "[default: 0.5]" in help_text.split("--toy-scale")[1]
    j = tmp_path / "toy.json"
    args = ["freeinit", "--video", str(clip), "--size", "16", "--steps", "3", "--num-iters", "2", "-q"]
    r = runner.invoke(main, [*args, "--prior", "toy", "--prior", "freeinit", "--toy-scale", "2", "--json", str(j)])
    assert r.exit_code == 0, r.output
    toy_run, freeinit_run = json.loads(j.read_text())["runs"]
    assert toy_run["prior"] == "toy" and toy_run["info"]["toy_scale"] == 2.0 and len(toy_run["gap_db"]) == 2
    assert "toy_scale" not in freeinit_run["info"]  # each prior takes its own options only


def test_an_unregistered_prior_is_no_choice(clip):
    assert "toy" not in PRIORS
    r = CliRunner().invoke(main, ["freeinit", "--video", str(clip), "--prior", "toy"])
    assert r.exit_code == 2 and "'--prior'" in r.output
    assert "--toy-scale" not in CliRunner().invoke(main, ["freeinit", "--help"]).output
