"""Run under torchrun by test_distributed.py: registers the tiny test architecture, trains one epoch with the
engine (DDP, gloo on CPU) and saves this rank's final weights to OUT/rank<r>.pt."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))


def main(data: str, project: str, out: str) -> None:
    import torch

    from instseg.config import ScheduleConfig, TrainConfig
    from instseg.engine.trainer import Trainer
    from instseg.models import registry

    registry.ARCHITECTURES["tiny-test"] = registry.ArchitectureSpec(
        name="tiny-test", backend="native", default_size="t", default_schedule="step", mask_stride=4,
        builder="tiny_model:build_tiny", sizes={"t": registry.SizeSpec("t", default_batch=2, default_imgsz=64)})
    cfg = TrainConfig(data=Path(data), architecture="tiny-test", epochs=1, imgsz=64, batch=2, device="cpu",
                      workers=0, project=Path(project), name="ddp", quiet=True,
                      schedule=ScheduleConfig(recipe="step", lr0=0.05))
    trainer = Trainer(cfg)
    nb = trainer.nb
    result = trainer.fit()
    torch.save({"params": {n: p.detach() for n, p in trainer.model.named_parameters()}, "nb": nb, "run": str(result.run.root)},
               Path(out) / f"rank{os.environ['RANK']}.pt")


if __name__ == "__main__":
    main(*sys.argv[1:4])
