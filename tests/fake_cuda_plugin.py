"""``pytest -p fake_cuda_plugin``: the whole session on fake CUDA (tests/fake_cuda.py), for a dry run of the
GPU checks (tests/test_gpu.py) on a machine without a GPU. Not loaded otherwise."""

from __future__ import annotations

import contextlib

_session = contextlib.ExitStack()


def pytest_configure(config) -> None:
    from fake_cuda import fake_cuda

    _session.enter_context(fake_cuda())


def pytest_unconfigure(config) -> None:
    _session.close()
