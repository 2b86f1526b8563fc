"""A CPU-only stand-in for one CUDA device, for tests of device discipline (issue 16) that run in CI.

``with fake_cuda():`` makes ``torch.cuda.is_available()`` true and lets code put tensors and models "on
cuda:0": their data stays on the CPU, but they say ``device == cuda:0`` and behave as CUDA tensors do where
device discipline shows. A ``TorchFunctionMode`` sees every torch call and keeps the set of tensors that are
"on cuda" (no tensor subclass: parameters, buffers and views stay plain tensors):

- ``.to("cuda")``, ``.cuda()``, ``nn.Module.to("cuda")`` and any factory given ``device="cuda"`` (``zeros``,
  ``randn``, ``arange``, ``tensor``, ``new_*``, ``*_like``, …) make device tensors; every op with a device
  input makes device outputs; ``.cpu()`` / ``.to("cpu")`` copy back to plain CPU tensors;
- an op that mixes a device tensor with a CPU tensor of ndim > 0 raises ``RuntimeError("Expected all tensors
  to be on the same device …")``, as CUDA does (0-dim CPU tensors mix, as on CUDA; copies, ``__setitem__``
  values and CPU index tensors are allowed, as on CUDA);
- ``.numpy()`` and ``np.asarray`` of a device tensor raise ``TypeError``, as CUDA does;
- ``torch.Generator("cuda")`` is a CPU generator that says ``cuda:0``; drawing on one device with a generator
  of the other raises, as torch does;
- the ``torch.cuda`` calls freqscope and diffusers make (memory statistics, synchronize, …) are stubs.

What it cannot show: anything about the CUDA kernels themselves (their numerics, cuFFT, cuDNN, atomics and
non-determinism, fp16/bf16 overflow on GPU kernels, ops that exist on one backend only), memory (sizes,
out-of-memory, caching allocator, pinned memory), streams, asynchronous copies and synchronisation, the CUDA
random-number stream (a "cuda" generator draws CPU numbers), several GPUs (one device, cuda:0), NCCL.
Code that reads ``tensor.is_cuda`` through C++ (not Python) sees the CPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

__all__ = ["FakeCudaMode", "fake_cuda", "CUDA"]

CUDA = torch.device("cuda", 0)
_T = torch.Tensor

#: Calls that move or copy data between devices (no same-device check; CUDA allows them).
_MOVES = {_T.to, _T.cuda, _T.cpu, _T.type_as, _T.copy_, _T.__setitem__, _T.__getitem__, _T.new_tensor}
_MOVES |= {_T.new_zeros, _T.new_ones, _T.new_empty, _T.new_full, torch.as_tensor, torch.tensor}
_MOVES |= {torch._has_compatible_shallow_copy_type, _T.__deepcopy__}


def _is_cuda(device: Any) -> bool | None:
    """Whether a ``device=`` argument names CUDA (None: no device given)."""
    if device is None:
        return None
    if isinstance(device, int):
        return True  # an index: a CUDA device
    return torch.device(device).type == "cuda"


class Generator(torch._C.Generator):
    """``torch.Generator`` while the harness runs: ``Generator("cuda")`` draws on the CPU but says cuda:0."""

    fake_cuda: bool

    def __new__(cls, device: Any = "cpu") -> Generator:
        g = super().__new__(cls, "cpu")  # type: ignore[call-arg]  # torch's stub has no __new__
        g.fake_cuda = bool(_is_cuda(device))
        return g

    def __init__(self, device: Any = "cpu") -> None:
        pass

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return CUDA if self.fake_cuda else torch.device("cpu")


def _generator_on_cuda(g: Any) -> bool:
    return bool(getattr(g, "fake_cuda", False))


class FakeCudaMode(TorchFunctionMode):
    """Tracks which tensors are "on cuda:0" (:data:`on`) through every torch call."""

    def __init__(self) -> None:
        super().__init__()
        self.on: WeakIdKeyDictionary = WeakIdKeyDictionary()

    def cuda(self, t: Any) -> bool:
        """Whether ``t`` is a tensor on the fake device."""
        return isinstance(t, torch.Tensor) and t in self.on

    def _mark(self, out: Any) -> Any:
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.on[t] = True
        return out

    def _moved(self, x: torch.Tensor, out: torch.Tensor, to_cuda: bool) -> torch.Tensor:
        """``out`` (``x`` converted on the CPU) placed on the device asked for: a new tensor where it moves."""
        if to_cuda != self.cuda(x) and out is x:
            out = x.clone()  # a move between devices is a copy, never the same tensor
        if to_cuda:
            self.on[out] = True
        else:
            self.on.pop(out, None)
        return out

    def _to(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if args and isinstance(args[0], torch.Tensor):  # x.to(other): other's device and dtype
            other = args[0]
            return self._moved(x, x.to(other.dtype, *args[1:], **kwargs), self.cuda(other))
        device, dtype, non_blocking, memory_format = torch._C._nn._parse_to(*args, **kwargs)
        kw: dict[str, Any] = {"dtype": dtype, "non_blocking": non_blocking, "copy": kwargs.get("copy", False)}
        if memory_format is not None:
            kw["memory_format"] = memory_format
        if device is not None and device.type != "cuda":
            kw["device"] = device  # cpu, or meta while a model loads
        to_cuda = self.cuda(x) if device is None else device.type == "cuda"
        return self._moved(x, x.to(**kw), to_cuda)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: C901 - one branch per kind of call
        kwargs = dict(kwargs or {})
        name = getattr(func, "__name__", "")
        prop = getattr(getattr(func, "__self__", None), "__name__", None) if name in ("__get__", "__set__") else None
        # Properties that say where a tensor lives.
        if name == "__get__" and prop in ("device", "is_cuda", "is_cpu"):
            on = self.cuda(args[0])
            return {"device": CUDA if on else func(*args), "is_cuda": on, "is_cpu": not on}[prop]
        if name == "__set__" and prop == "data":  # param.data = moved (nn.Module.to)
            func(*args, **kwargs)
            if self.cuda(args[1]):
                self.on[args[0]] = True
            else:
                self.on.pop(args[0], None)
            return None
        if func in (_T.numpy, _T.__array__) and self.cuda(args[0]):
            raise TypeError(
                "can't convert cuda:0 device type tensor to numpy. "
                "Use Tensor.cpu() to copy the tensor to host memory first."
            )
        if func is _T.get_device:
            return 0 if self.cuda(args[0]) else -1
        if func is _T.pin_memory:  # pinned memory needs a GPU; here it is the same tensor
            return args[0]
        if func is _T.to:
            return self._to(*args, **kwargs)
        if func is _T.cuda:
            return self._moved(args[0], args[0], True)
        if func is _T.cpu:
            return self._moved(args[0], args[0], False)
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        # Where the output goes: a device= argument, else wherever a tensor input is.
        to_cuda = _is_cuda(kwargs.get("device"))
        if to_cuda:
            kwargs["device"] = "cpu"
        elif func is _T.__getitem__ or func in (_T.new_tensor, _T.new_zeros, _T.new_ones, _T.new_empty, _T.new_full):
            to_cuda = self.cuda(args[0])  # indexing and new_*: the indexed tensor's device
            if not to_cuda and any(self.cuda(t) and t.ndim > 0 for t in tensors[1:]):  # a 0-dim index is a number
                raise RuntimeError("indices should be either on cpu or on the same device as the indexed tensor (cpu)")
        else:
            to_cuda = any(self.cuda(t) for t in tensors)
        if to_cuda and func not in _MOVES and any(not self.cuda(t) and t.ndim > 0 for t in tensors):
            raise RuntimeError(
                f"Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu! "
                f"(fake_cuda: {name})"
            )
        g = kwargs.get("generator")
        if g is not None and _generator_on_cuda(g) != bool(to_cuda):
            have, want = ("cuda", "cpu") if _generator_on_cuda(g) else ("cpu", "cuda")
            raise RuntimeError(f"Expected a '{want}' device type for generator but found '{have}'")
        out = func(*args, **kwargs)
        if name.endswith("_") and not name.endswith("__"):
            return out  # in place: the tensor stays where it is
        return self._mark(out) if to_cuda else out


def _returning(value: Any):
    """A stub returning ``value``: one function object per stub (torch._dynamo maps each torch.cuda function)."""

    def stub(*args: Any, **kwargs: Any) -> Any:
        return value

    return stub


#: The ``torch.cuda`` functions stubbed while the harness runs, and what they return.
CUDA_STUBS = {
    "is_available": True,
    "device_count": 1,
    "current_device": 0,
    "set_device": None,
    "synchronize": None,
    "empty_cache": None,
    "memory_allocated": 0,
    "max_memory_allocated": 0,
    "memory_reserved": 0,
    "max_memory_reserved": 0,
    "reset_peak_memory_stats": None,
    "mem_get_info": (80 << 30, 80 << 30),
    "get_device_name": "fake CUDA (tests/fake_cuda.py)",
    "is_bf16_supported": True,
}


@contextlib.contextmanager
def fake_cuda() -> Iterator[FakeCudaMode]:
    """Run the block as if this machine had one CUDA device (see the module's docstring)."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in CUDA_STUBS.items():
            mp.setattr(torch.cuda, name, _returning(value))
        mp.setattr(torch, "Generator", Generator)
        with FakeCudaMode() as mode:
            yield mode
