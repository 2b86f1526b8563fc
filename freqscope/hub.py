"""Hub ids, offline: fail in a second with one plain line instead of retrying for half a minute.

Bottom layer: imports nothing from freqscope.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

__all__ = ["check_hub_source", "hub_offline"]

_TRUE = {"1", "ON", "YES", "TRUE"}
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` (or the older ``TRANSFORMERS_OFFLINE``) is set."""
    return any(os.environ.get(v, "").upper() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _reachable(url: str, timeout: float) -> bool:
    """A TCP connection to the hub's host opens within ``timeout`` seconds, name lookup included (through a
    proxy: assumed). The lookup has no timeout of its own (a machine without a route can hang in it), so the
    whole attempt runs in a daemon thread that is given up on after ``timeout``."""
    if any(os.environ.get(v) for v in _PROXY_VARS):
        return True
    u = urlparse(url)
    address = (u.hostname, u.port or (443 if u.scheme == "https" else 80))
    opened: list[bool] = []

    def connect() -> None:
        try:
            with socket.create_connection(address, timeout=timeout):
                opened.append(True)
        except OSError:
            opened.append(False)

    attempt = threading.Thread(target=connect, daemon=True)
    attempt.start()
    attempt.join(timeout)
    return bool(opened and opened[0])


def check_hub_source(
    source: str | os.PathLike,
    what: str,
    *,
    filename: str = "config.json",
    subfolder: str | None = None,
    timeout: float = 3.0,
) -> bool:
    """Before ``from_pretrained(source)``: a local folder, a hub id in the local cache, or a hub that
    answers within ``timeout`` s; else one ``ValueError`` saying the hub is offline or unreachable and
    suggesting a folder saved with ``save_pretrained``. ``what`` names the parameter in the message.

    Returns whether to load with ``local_files_only=True``: a cached id while the hub is offline or out of
    reach (asking the hub would only wait and retry before the library falls back to the cache)."""
    src = os.fspath(source)
    if Path(src).exists():
        return False
    from huggingface_hub import constants, try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(src, f"{subfolder}/{filename}" if subfolder else filename)
    except Exception:  # noqa: BLE001 - an id the hub library rejects: from_pretrained reports it
        return False
    if hub_offline():
        reason = "the hub is offline (HF_HUB_OFFLINE is set)"
    elif not _reachable(constants.ENDPOINT, timeout):
        reason = f"the hub ({urlparse(constants.ENDPOINT).hostname}) cannot be reached"
    else:
        return False
    if isinstance(cached, str):
        return True
    raise ValueError(
        f"{what} {src!r} is not in the local cache and {reason}; "
        "on a machine with access, save it with save_pretrained and pass that folder"
    )
