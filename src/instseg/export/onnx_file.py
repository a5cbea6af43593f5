"""The steps every export shares once a raw ``.onnx`` exists: the ONNX checker, instseg's
``metadata_props``, optional onnxsim, one atomic write to the destination, and the parity run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from instseg.errors import BackendUnavailable

INSTALL = "pip install 'instseg[export]'"


def require_onnx() -> None:
    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise BackendUnavailable(f"{' and '.join(missing)} not installed: {INSTALL}")


def require_onnxsim() -> None:
    if importlib.util.find_spec("onnxsim") is None:
        raise BackendUnavailable(f"--simplify needs onnxsim, which is not installed: {INSTALL} "
                                 "(or pip install onnxsim; drop --simplify to export without it)")


def finalize(raw: Path, out: Path, meta: dict, *, simplify: bool) -> Path:
    """Check ``raw``, attach ``meta`` (``instseg.*`` metadata_props, replacing any earlier instseg entries,
    keeping other tools' entries), simplify it when asked, and write it to ``out`` atomically."""
    import onnx

    from instseg.backends.onnx_meta import PREFIX, encode_metadata
    from instseg.io import atomic_write

    model = onnx.load(str(raw))
    onnx.checker.check_model(model)
    if simplify:
        require_onnxsim()
        import onnxsim

        simplified, ok = onnxsim.simplify(model)
        if not ok:
            raise RuntimeError(f"onnxsim could not validate the simplified graph of {out}; export without --simplify")
        model = simplified
        meta = {**meta, "simplified": True}
    keep = [(p.key, p.value) for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    for key, value in keep + sorted(encode_metadata(meta).items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    data = model.SerializeToString()
    return atomic_write(out, lambda f: f.write(data), binary=True)


def parity(path: Path, example: np.ndarray, expected: list[np.ndarray], names: list[str],
           count_only: bool = False) -> dict:
    """Max abs difference per output between onnxruntime on ``example`` and the PyTorch ``expected``;
    for graphs with a data-dependent detection count (``count_only``) the counts must agree first."""
    from instseg.backends.onnx import make_session

    got = make_session(path).run(None, {"images": example})
    out: dict = {}
    for name, a, b in zip(names, got, expected):
        if a.shape != b.shape:
            out[name] = f"shape {list(a.shape)} vs PyTorch {list(b.shape)}"
            continue
        out[name] = float(np.abs(a.astype(np.float32) - b.astype(np.float32)).max()) if a.size else 0.0
    if count_only:
        out["detections"] = int(got[0].shape[0])
    return out


__all__ = ["INSTALL", "finalize", "parity", "require_onnx", "require_onnxsim"]
