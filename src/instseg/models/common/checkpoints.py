"""Reading upstream checkpoint files: torch.hub's download cache, MMDetection's ``meta + state_dict``.

Every file is read with ``torch.load(weights_only=True)``; offline, the error names the file to place in
``torch.hub.get_dir()/checkpoints/``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from instseg.errors import WeightsError


def hub_checkpoint_path(url: str) -> Path:
    """Where torch.hub keeps the download of ``url``: ``torch.hub.get_dir()/checkpoints/<file name>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def cached_download(url: str) -> Path:
    """The local copy of ``url`` in torch.hub's cache, downloaded when absent (WeightsError when that
    fails)."""
    path = hub_checkpoint_path(url)
    if path.is_file():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(path), progress=False)
    except Exception as e:  # URLError, HTTPError, OSError, ssl errors: all mean "could not fetch"
        raise WeightsError(
            f"cannot download {url} ({type(e).__name__}: {e}). Offline? Download that file on a machine with "
            f"internet and place it as {path} (torch.hub.get_dir()/checkpoints/{path.name}), or pass its path."
        ) from e
    return path


def read_mmdet_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The model parameters of an MMDetection checkpoint (``{"meta", "state_dict", ...}``), an instseg
    checkpoint (``"model"``) or a bare state dict, and notes on what was dropped.

    MMEngine's EMAHook writes the averaged weights into ``state_dict`` when saving (the raw ones go to
    ``ema_state_dict``, which is ignored); MMDetection 2.x's EMA hook kept ``ema_*`` buffers inside the state
    dict: those are dropped, as are DDP's ``module.`` prefixes.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file; give an existing .pth/.pt path")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(
            f"{path}: cannot be read as a PyTorch checkpoint with weights_only=True ({e})"
        ) from e
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(
            f"{path}: holds no state dict (a dict of tensors, or one under 'state_dict' or 'model')"
        )
    notes = []
    ema = [k for k in obj if k.startswith("ema_")]
    if ema:
        notes.append(f"dropped {len(ema)} 'ema_*' buffers of MMDetection 2.x's EMA hook")
    state = {k: v for k, v in obj.items() if not k.startswith("ema_")}
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
        notes.append("stripped the 'module.' prefix")
    return state, notes


__all__ = ["cached_download", "hub_checkpoint_path", "read_mmdet_state_dict"]
