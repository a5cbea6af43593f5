"""Checkpoints: written atomically (temp file in the same folder + ``os.replace``), read with
``torch.load(weights_only=True)`` so a checkpoint can never run code.

An instseg checkpoint is a dict::

    {"model": state_dict, "ema": {"model": state_dict, "updates": int} | None, "optimizer": state_dict | None,
     "epoch": int (last finished, 0-based), "architecture": str, "size": str, "names": [str],
     "config": dict (TrainConfig as plain types), "best_fitness": float | None, "rng": {...},
     "instseg_version": str, ...}
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from instseg.errors import WeightsError
from instseg.io import atomic_write

REQUIRED_KEYS = ("model", "architecture", "size", "names")


def save_checkpoint(path: Path, ckpt: dict) -> Path:
    """Write ``ckpt`` to ``path`` atomically and durably (fsync before the rename): a kill, a power cut or a
    full disk leaves the previous file intact; a full disk raises :class:`instseg.io.DiskFullError` naming
    the folder and the space needed."""
    import torch

    return atomic_write(path, lambda f: torch.save(ckpt, f), binary=True, fsync=True)


def load_checkpoint(path: Path, map_location: str = "cpu") -> dict:
    """Read an instseg checkpoint safely; WeightsError naming the file when it is missing, foreign or broken."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: checkpoint not found (pass the path of a .pt file written by instseg train)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle errors, truncated zip, disallowed globals...
        raise WeightsError(
            f"{path}: cannot be read as a safe (weights_only) torch checkpoint: {str(e).splitlines()[0][:200]} "
            "(is it an instseg .pt file? framework-specific files go through --pretrained or their backend)") from e
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        have = sorted(ckpt)[:10] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise WeightsError(f"{path}: not an instseg checkpoint (needs keys {list(REQUIRED_KEYS)}, has {have})")
    return ckpt


def remove_stale_temps(run_root: Path) -> list[Path]:
    """Delete the temporary files (``.<name>.*.tmp``) that a killed run left in its folder; return them."""
    root = Path(run_root)
    stale = [p for folder in (root, root / "weights", root / "predictions") if folder.is_dir()
             for p in folder.glob(".*.tmp") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def is_instseg_checkpoint(path: Path) -> bool:
    """True when ``path`` loads safely and carries instseg's checkpoint keys (an MMDetection ``.pth`` with
    ``meta`` + ``state_dict`` does not)."""
    try:
        load_checkpoint(path)
    except WeightsError:
        return False
    return True


def rng_state() -> dict:
    """Python, NumPy and torch RNG states as weights_only-loadable types (tensors, ints, lists)."""
    import torch

    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    import torch

    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def model_state(ckpt: dict, prefer_ema: bool = True) -> dict:
    """The weights to use for inference: the EMA's when the checkpoint has one, else the model's."""
    ema = ckpt.get("ema")
    if prefer_ema and ema:
        return ema["model"]
    return ckpt["model"]


def load_weights(model, state: dict, path: Path, strict: bool = True) -> None:
    """``model.load_state_dict`` with a WeightsError naming the file and the mismatching keys."""
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as e:
        msg = str(e).replace("\n", " ")[:400]
        raise WeightsError(f"{path}: weights do not fit the model ({msg}); check --architecture/--model "
                           "and the dataset's classes") from e


__all__ = ["save_checkpoint", "load_checkpoint", "remove_stale_temps", "rng_state", "set_rng_state", "model_state", "load_weights"]
