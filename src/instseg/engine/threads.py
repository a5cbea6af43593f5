"""How a process's CPU cores are split between the model (torch's intra-op threads) and DataLoader workers.

On CUDA the model runs on the GPU: the workers get the cores (``min(workers, cores / ranks)``, as
Ultralytics does). On CPU every worker process takes a core from torch's thread pool, and the step (not the
data) is the bottleneck; a worker pays off only on cores torch does not already use. So on CPU the workers
are what is left after torch's threads, at most ``workers``; with torch using every core (its default),
loading runs in the training process. ``instseg train workers=N`` is the upper bound in both cases.
"""

from __future__ import annotations

import os


def available_cpus() -> int:
    """Cores this process may run on (its affinity mask: a container's or ``taskset``'s limit)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def loader_workers(requested: int, device_type: str, world_size: int = 1) -> int:
    """DataLoader worker processes per rank for ``requested`` (the config's ``workers``)."""
    import torch

    cores = max(1, available_cpus() // max(1, world_size))
    if device_type == "cuda":
        return max(0, min(int(requested), cores))
    return max(0, min(int(requested), cores - torch.get_num_threads()))


__all__ = ["available_cpus", "loader_workers"]
