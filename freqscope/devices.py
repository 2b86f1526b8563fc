"""Devices: the one the user asked for, if this machine has it (errors name the parameter ``device``).

Bottom layer: imports nothing from freqscope.
"""

from __future__ import annotations

import torch

__all__ = ["resolve_device", "DEVICE_RULE"]

#: ``device=None`` in words, for help texts.
DEVICE_RULE = "cuda if available, else cpu"


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device asked for, if this machine has it: cpu, cuda, cuda:N (N below the GPU count) or mps;
    None: cuda if available, else cpu."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        d = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"`device` {device!r}: not a device; use cpu, cuda or cuda:N") from None
    if d.type == "cuda":
        _check_cuda(device, d)
    elif d.type == "mps":
        if not (torch.backends.mps.is_available() and d.index in (None, 0)):
            raise ValueError(f"`device` {device}: Apple MPS is not available on this machine; use `device` cpu")
    elif d.type != "cpu" or d.index not in (None, 0):
        raise ValueError(f"`device` {device}: not supported; use cpu, cuda or cuda:N")
    return d


def _check_cuda(device: str | torch.device, d: torch.device) -> None:
    if not torch.cuda.is_available():
        raise ValueError(f"`device` {device}: CUDA is not available on this machine; use `device` cpu")
    if d.index is not None and d.index >= torch.cuda.device_count():
        n = torch.cuda.device_count()
        raise ValueError(f"`device` {device}: this machine has {n} GPU(s), cuda:0 to cuda:{n - 1}")
