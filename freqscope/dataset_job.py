"""The ``snr`` job over a dataset: run (or resume) the per-clip analysis on this process or every
torchrun rank, merge the ranks' results, and aggregate them under one or several schedules.

Under ``torchrun`` (``WORLD_SIZE`` > 1) each rank analyses ``rank::world_size`` of the clips and
writes its own part files; after a barrier rank 0 merges them into the results file and aggregates.
The process group uses gloo on the CPU and NCCL on CUDA (each rank on ``cuda:LOCAL_RANK``).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .aggregate import Summary, aggregate
from .dataset import run_dataset
from .encode import Encoder
from .results import ResultsStore, read_results
from .schedule import Schedule

__all__ = ["DatasetJob", "dist_env", "rank_device", "snr_dataset", "snr_from_results"]


@dataclass
class DatasetJob:
    """What a dataset ``snr`` run did (totals over all ranks) and its summary under each schedule."""

    summaries: list[Summary]
    analysed: int = 0  # clips analysed now
    resumed: int = 0  # clips found done in the results file
    skipped: int = 0  # clips that failed now
    warned: int = 0  # clips analysed now with a warning
    errors: list[tuple[str, str]] = field(default_factory=list)  # this rank's (path, error), for messages
    rank: int = 0
    world_size: int = 1
    seconds: float = 0.0


def dist_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment (``0, 1, 0`` outside torchrun)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def rank_device(device: torch.device | str) -> torch.device:
    """Under torchrun, each rank's own GPU ``cuda:LOCAL_RANK`` in place of ``cuda``; else ``device``."""
    device = torch.device(device)
    _, world, local = dist_env()
    return torch.device("cuda", local) if world > 1 and device.type == "cuda" else device


def snr_from_results(
    path: str | os.PathLike, schedules: list[Schedule], *, weighted: bool = False
) -> list[Summary]:
    """Aggregate a results file under each schedule, without decoding anything."""
    table = read_results(path)
    n = len(set(table.column("settings").to_pylist()))
    if n > 1:
        raise ValueError(
            f"`from_results` {path} holds clips analysed with {n} different settings (frames, size, encoder, "
            "bands...); keep one results file per setting"
        )
    return [aggregate(table, s, weighted=weighted) for s in schedules]


def snr_dataset(
    sources: list[str],
    encoder: Encoder,
    schedules: list[Schedule],
    *,
    results: str | os.PathLike | None = None,
    weighted: bool = False,
    device: torch.device | str = "cpu",
    progress: Callable | None = None,
    **kwargs: Any,
) -> DatasetJob:
    """Run :func:`~freqscope.dataset.run_dataset` on this process, or on every torchrun rank, then
    aggregate (on rank 0) under each of ``schedules``. ``kwargs`` go to ``run_dataset``."""
    rank, world, _ = dist_env()
    device = torch.device(device)
    if world > 1:
        import torch.distributed as dist

        if results is None:
            raise ValueError("under torchrun give `results` FILE.parquet: the ranks merge their rows there")
        device = rank_device(device)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            # Ranks wait for each other only at the end; a long timeout lets an unlucky rank finish its share.
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend, timeout=datetime.timedelta(hours=12))
    run = run_dataset(
        sources,
        encoder,
        results=results,
        device=device,
        rank=rank,
        world_size=world,
        progress=progress if rank == 0 else None,
        **kwargs,
    )
    counts = torch.tensor([run.analysed, run.resumed, len(run.errors), run.warned], dtype=torch.float64)
    if world > 1:
        counts = counts.to(device)
        dist.all_reduce(counts)  # totals over ranks; also a barrier: every rank has flushed its parts
    analysed, resumed, skipped, warned = map(int, counts.tolist())
    job = DatasetJob([], analysed, resumed, skipped, warned, errors=run.errors, rank=rank, world_size=world)
    job.seconds = run.seconds
    if rank == 0:
        if results is not None:
            if world > 1:
                ResultsStore(results).compact()  # every rank's parts, once all are flushed (one process: done)
            table = read_results(results, settings=run.settings_hash)
        else:
            table = run.rows
        job.summaries = [aggregate(table, s, weighted=weighted) for s in schedules]
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return job
