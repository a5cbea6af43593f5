"""torchrun / DDP helpers. ``torchrun --nproc_per_node N -m instseg train ...`` sets RANK, LOCAL_RANK and
WORLD_SIZE; without them everything runs as a single process (rank 0 of 1)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def dist_env() -> DistInfo:
    """The process's place in a torchrun job, read from the environment."""
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
                    int(os.environ.get("WORLD_SIZE", 1)))


def select_device(device: str, info: DistInfo):
    """'' -> first CUDA device if any else cpu; 'cpu'; '0' or '0,1' (under DDP: the local rank's entry)."""
    import torch

    from instseg.config import ConfigError

    device = (device or "").strip().lower()
    if device in ("", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", info.local_rank if info.enabled else 0)
    if device in ("", "cpu"):
        return torch.device("cpu")
    ids = [d for d in device.replace("cuda:", "").split(",") if d != ""]
    if not all(d.isdigit() for d in ids):
        raise ConfigError(f"device={device!r}; valid: cpu, 0, 0,1 (CUDA indices)")
    if len(ids) > 1 and not info.enabled:
        raise ConfigError(f"device={device!r} names {len(ids)} GPUs: launch one process per GPU with "
                          f"`torchrun --nproc_per_node {len(ids)} -m instseg train ... --device {device}`")
    if not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} asks for CUDA but torch sees no CUDA device; use --device cpu")
    return torch.device("cuda", int(ids[info.local_rank % len(ids)] if info.enabled else ids[0]))


def init_distributed(info: DistInfo, device) -> None:
    """Join the process group (nccl on CUDA, gloo on CPU) when running under torchrun."""
    import torch.distributed as dist

    if info.enabled and not dist.is_initialized():
        if device.type == "cuda":
            import torch

            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=info.rank,
                                world_size=info.world_size)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def broadcast_object(obj, info: DistInfo):
    """``obj`` of rank 0, on every rank."""
    if not info.enabled:
        return obj
    import torch.distributed as dist

    box = [obj if info.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_mean(values: list[float], info: DistInfo) -> list[float]:
    """Mean over ranks of a list of floats (loss logging)."""
    if not info.enabled:
        return values
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return (t / info.world_size).tolist()


def cleanup(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


__all__ = ["DistInfo", "dist_env", "select_device", "init_distributed", "barrier", "broadcast_object",
           "all_reduce_mean", "cleanup"]
