"""Detectron2 checkpoint files: recognised without unpickling, read without running code.

Two formats exist:

* ``model_final.pth`` written by Detectron2's ``DetectionCheckpointer``: a torch zip holding
  ``{"model": state_dict, "iteration": int, "optimizer": ..., "scheduler": ...}``; read with
  ``torch.load(weights_only=True)``;
* the model-zoo ``model_final_<hash>.pkl``: a plain pickle of ``{"model": {name: numpy array},
  "__author__": "Detectron2 Model Zoo"}``; read with :class:`ArrayUnpickler`, which resolves only the numpy
  globals an array needs (anything else in the file is an error, not a call).

Parameter names are Detectron2's (``backbone.bottom_up.res2.0.conv1.weight``, ``roi_heads.box_predictor...``);
instseg's wrapper holds the model as ``.model``, so they load into ``wrapper.model``.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import zipfile
from pathlib import Path

import numpy as np

from instseg.errors import WeightsError

D2_PREFIXES = ("backbone.bottom_up.", "proposal_generator.", "roi_heads.")
"""A Detectron2 GeneralizedRCNN state dict has keys under each of these (at the top level, no ``model.``)."""
INSTSEG_MARKERS = ("instseg_version", "architecture")
"""Strings of an instseg checkpoint (its own keys); a file holding them is instseg's, not Detectron2's."""
_SCAN_OPCODES = 2_000_000
# these keys of old checkpoints are non-persistent buffers today (Detectron2 ignores them as well)
IGNORED_KEYS = ("pixel_mean", "pixel_std")


def _pickle_strings(stream, limit: int = _SCAN_OPCODES):
    """The string constants of a pickle stream, read with ``pickletools.genops`` (decodes opcodes, executes
    nothing). Stops at the end of the first pickle or after ``limit`` opcodes."""
    try:
        for k, (op, arg, _pos) in enumerate(pickletools.genops(stream)):
            if isinstance(arg, str):
                yield arg
            if op.name == "STOP" or k >= limit:
                return
    except Exception:  # truncated / not a pickle: whatever was read so far is all there is
        return


def scan_keys(path: Path) -> set[str]:
    """Which of :data:`D2_PREFIXES` (and "instseg", for :data:`INSTSEG_MARKERS`) occur as strings in
    ``path``'s pickle (the ``data.pkl`` of a torch zip, or the file itself), read until every prefix was
    seen. Never unpickles."""
    path = Path(path)
    found: set[str] = set()

    def feed(stream) -> None:
        for s in _pickle_strings(stream):
            if s in INSTSEG_MARKERS:
                found.add("instseg")
            for p in D2_PREFIXES:
                if s.startswith(p):
                    found.add(p)
            if all(p in found for p in D2_PREFIXES):  # enough: a zoo .pkl is not read to its end
                return

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                name = next((n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
                if name is not None:
                    with z.open(name) as f:
                        feed(io.BufferedReader(f))
        else:
            with open(path, "rb") as f:
                feed(io.BufferedReader(f))
    except OSError:
        return set()
    return found


def is_detectron2_file(path: Path) -> bool:
    """True when ``path`` is a Detectron2 checkpoint (``.pth`` / zoo ``.pkl``), judged from its pickle's
    string constants: every prefix of :data:`D2_PREFIXES` present, no instseg checkpoint key."""
    path = Path(path)
    if not path.is_file():
        return False
    found = scan_keys(path)
    return "instseg" not in found and all(p in found for p in D2_PREFIXES)


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers (dict, list, tuple, str, numbers) and numpy arrays; refuses every other
    global, so a crafted file cannot call anything."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
        ("collections", "OrderedDict"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed (only numpy arrays and plain "
                                         "containers)")
        return super().find_class(module, name)


def load_pkl(path: Path) -> dict:
    """The ``{"model": {...}, ...}`` dict of a Detectron2 zoo ``.pkl``, read with :class:`ArrayUnpickler`."""
    try:
        with open(path, "rb") as f:
            data = ArrayUnpickler(f, encoding="latin1").load()
    except Exception as e:
        raise WeightsError(f"{path}: cannot be read as a Detectron2 model-zoo .pkl ({type(e).__name__}: "
                           f"{str(e)[:200]}); pass a Detectron2 model_final .pkl/.pth") from e
    return data


def load_state_dict(path: Path) -> dict:
    """The model state dict (torch tensors, Detectron2 names) of a Detectron2 ``.pth`` or zoo ``.pkl``."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: file not found (pass a Detectron2 model_final.pth / .pkl)")
    if zipfile.is_zipfile(path):
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise WeightsError(f"{path}: cannot be read as a safe (weights_only) torch file: "
                               f"{str(e).splitlines()[0][:200]}") from e
    else:
        data = load_pkl(path)
    state = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not any(str(k).startswith(D2_PREFIXES[0]) for k in state):
        raise WeightsError(f"{path}: holds no Detectron2 GeneralizedRCNN weights (no "
                           f"'{D2_PREFIXES[0]}*' keys)")
    out = {}
    for k, v in state.items():
        if k in IGNORED_KEYS or "anchor_generator.cell_anchors" in k:
            continue
        out[k] = torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
    return out


def load_into(model, state: dict, path: Path, log=None) -> tuple[int, list[str]]:
    """Copy ``state`` into ``model`` (a GeneralizedRCNN) where names and shapes fit; the class-specific
    layers of another class count are left at their init. WeightsError when a backbone/RPN tensor is
    missing (another size's file). Returns (tensors loaded, names skipped)."""
    own = model.state_dict()
    fit = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    skipped = sorted(k for k in own if k not in fit)
    vital = [k for k in skipped if not k.startswith(("roi_heads.box_predictor.", "roi_heads.mask_head.predictor."))]
    if vital:
        raise WeightsError(f"{path}: {len(vital)} tensors do not fit this model (first: {vital[0]}); the file is "
                           "another size: pick the matching --model (r50-fpn, r101-fpn, x101-32x8d-fpn)")
    model.load_state_dict(fit, strict=False)
    if log is not None:
        note = f" ({len(skipped)} class-specific tensors left at init: other class count)" if skipped else ""
        log(f"loaded {len(fit)}/{len(own)} Detectron2 tensors from {path}{note}")
    return len(fit), skipped


def zoo_file(url: str) -> Path:
    """The zoo checkpoint ``url`` in torch.hub's cache (``<hub dir>/checkpoints/<name>``), downloaded there
    when absent; offline, a WeightsError naming the URL and the file to place."""
    import torch

    target = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if target.is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(target), progress=False)
    except Exception as e:  # URLError, HTTPError, disk full...
        raise WeightsError(f"cannot download the Detectron2 model-zoo weights ({type(e).__name__}: {str(e)[:160]}). "
                           f"Download {url} and place it at {target} (or pass --weights path/to/model_final.pkl)") from e
    return target


def guess_size(state: dict) -> str:
    """The size whose layout ``state`` has: depth from the res4 block count, ResNeXt from res2's width."""
    res4 = {k.split(".")[3] for k in state if k.startswith("backbone.bottom_up.res4.")}
    conv1 = state.get("backbone.bottom_up.res2.0.conv1.weight")
    if len(res4) == 6:
        return "r50-fpn"
    if len(res4) == 23:
        return "x101-32x8d-fpn" if conv1 is not None and conv1.shape[0] == 256 else "r101-fpn"
    raise WeightsError(f"a Detectron2 backbone with {len(res4)} res4 blocks is none of r50-fpn / r101-fpn / "
                       "x101-32x8d-fpn")


def num_classes_of(state: dict) -> int | None:
    w = state.get("roi_heads.box_predictor.cls_score.weight")
    return int(w.shape[0]) - 1 if w is not None else None


__all__ = ["is_detectron2_file", "scan_keys", "ArrayUnpickler", "load_pkl", "load_state_dict", "load_into",
           "zoo_file", "guess_size", "num_classes_of"]
