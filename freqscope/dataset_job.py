"""A dataset run on this process or on every torchrun rank: each rank analyses its share of the clips, then
rank 0 merges the ranks' rows and holds them for the summary.

Under ``torchrun`` (``WORLD_SIZE`` > 1) each rank analyses ``rank::world_size`` of the clips and
writes its own part files; after a barrier rank 0 merges them into the results file. The process group uses
gloo on the CPU and NCCL on CUDA (each rank on ``cuda:LOCAL_RANK``; gloo where ranks share a GPU).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa
import torch

from .aggregate import COLUMNS as AGGREGATE_COLUMNS
from .dataset import DatasetRun, run_dataset
from .encode import Encoder
from .results import ResultsStore, iter_results

__all__ = ["dist_env", "rank_device", "group_backend", "run_ranks"]


def dist_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment (``0, 1, 0`` outside torchrun)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def rank_device(device: torch.device | str) -> torch.device:
    """Under torchrun, each rank's own GPU ``cuda:LOCAL_RANK`` in place of ``cuda`` (ranks share the GPUs in turn
    where there are more ranks than GPUs on the node); else ``device``."""
    device = torch.device(device)
    _, world, local = dist_env()
    if world > 1 and device.type == "cuda":
        n = torch.cuda.device_count()
        return torch.device("cuda", local % n if n else local)
    return device


def group_backend(device: torch.device) -> str:
    """The process group's backend: NCCL where every rank on the node has a GPU of its own, gloo otherwise (on
    the CPU, or ranks sharing a GPU, which NCCL refuses); the group only sums a few counts and waits."""
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    return "nccl" if device.type == "cuda" and torch.cuda.device_count() >= local_world else "gloo"


def run_ranks(
    sources: list[str],
    encoder: Encoder,
    *,
    results: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    progress: Callable | None = None,
    **kwargs: Any,
) -> tuple[DatasetRun, Iterable[pa.Table | list[dict]] | None]:
    """Run :func:`~freqscope.dataset.run_dataset` on this process, or on every torchrun rank. Returns the run
    with its counts summed over the ranks, and on rank 0 every row of the run's settings in batches (the results
    file's, merged, read as they are used; or the rows themselves without one); None on the other ranks.
    ``kwargs`` go to ``run_dataset``."""
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
            dist.init_process_group(group_backend(device), timeout=datetime.timedelta(hours=12))
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
    if world > 1:
        on = device if dist.get_backend() == "nccl" else torch.device("cpu")  # NCCL sums on the GPU, gloo on the CPU
        counts = torch.tensor([run.analysed, run.resumed, run.warned], dtype=torch.float64, device=on)
        dist.all_reduce(counts)  # totals over ranks; also a barrier: every rank has flushed its parts
        run.analysed, run.resumed, run.warned = map(int, counts.tolist())
    rows: Iterable[pa.Table | list[dict]] | None = None
    if rank == 0:
        if results is not None:
            if world > 1:
                ResultsStore(results).compact()  # every rank's parts, once all are flushed (one process: done)
            rows = iter_results(results, settings=run.settings_hash, columns=AGGREGATE_COLUMNS)  # read as summarised
        else:
            rows = [run.rows]
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return run, rows
