"""``python train_entry.py <instseg args>``: the instseg CLI with the tiny test architecture registered, and
an optional SIGKILL at an exact moment (for the kill tests), given as INSTSEG_KILL_AT=<point>:<n>:

* ``write:<name>:<n>``  during the n-th write of a file called <name> (after half of its bytes);
* ``replaced:<name>:<n>`` right after the n-th write of <name> was moved into place;
* ``forward:<n>``      at the n-th training forward pass;
* ``validate:<n>``     inside the n-th validation, after its first predictions;
* ``after:<seconds>``  at a wall-clock time after start (a kill at an arbitrary moment).

The kill is a real ``SIGKILL`` of this process: no handler, no cleanup, no flush.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "engine"))


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _register_tiny() -> None:
    from instseg.models import registry

    registry.ARCHITECTURES["tiny-test"] = registry.ArchitectureSpec(
        name="tiny-test", backend="native", default_size="t", default_schedule="step", mask_stride=4,
        builder="tiny_model:build_tiny",
        sizes={"t": registry.SizeSpec("t", "test model", default_batch=2, default_imgsz=64)})


def _arm(spec: str) -> None:
    kind, *rest = spec.split(":")
    if kind == "after":
        threading.Timer(float(rest[0]), _die).start()
        return
    if kind in ("write", "replaced"):
        import instseg.engine.checkpoint as ck
        import instseg.io as io

        name, n = rest[0], int(rest[1])
        seen = {"n": 0}
        original = io.atomic_write

        def atomic_write(path, write, **kw):
            if Path(path).name != name:
                return original(path, write, **kw)
            seen["n"] += 1
            if seen["n"] != n:
                return original(path, write, **kw)
            if kind == "replaced":
                out = original(path, write, **kw)
                _die()
                return out

            def half(f):
                import io as _io

                buf = _io.BytesIO() if kw.get("binary") else _io.StringIO()
                write(buf)
                data = buf.getvalue()
                f.write(data[: len(data) // 2])
                f.flush()
                _die()

            return original(path, half, **kw)

        io.atomic_write = atomic_write
        ck.atomic_write = atomic_write
        return
    n = int(rest[0])
    count = {"n": 0}
    if kind == "forward":
        import tiny_model

        fwd = tiny_model.TinySeg.forward_train

        def forward_train(self, images, targets):
            count["n"] += 1
            if count["n"] == n:
                _die()
            return fwd(self, images, targets)

        tiny_model.TinySeg.forward_train = forward_train
    elif kind == "validate":
        import tiny_model

        pred = tiny_model.TinySeg.predict

        def predict(self, *a, **kw):
            count["n"] += 1
            if count["n"] == n:
                _die()
            return pred(self, *a, **kw)

        tiny_model.TinySeg.predict = predict
    else:
        raise SystemExit(f"unknown INSTSEG_KILL_AT {spec!r}")


if __name__ == "__main__":
    _register_tiny()
    if os.environ.get("INSTSEG_KILL_AT"):
        _arm(os.environ["INSTSEG_KILL_AT"])
    from instseg.cli import main

    sys.argv = ["instseg", *sys.argv[1:]]
    main()
