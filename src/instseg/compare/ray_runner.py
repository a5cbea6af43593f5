"""``instseg compare --ray-address ADDR``: every entry's training is one Ray task on that cluster, instead of
one after another on this machine.

A task runs :func:`instseg.compare.runner.train_entry`, the same function as the local mode, so resume
(finished entries are not retrained), the protocol check and the per-entry failure record are identical.
The task writes its run folder under ``--out`` on the node that runs it, and this process then scores every
folder: on a cluster of several machines ``--out`` must be storage that every node and this machine see
(NFS, a mounted bucket), and every node needs instseg installed (and the backend frameworks the entries
use). Scoring, latency and the bootstrap run here, on ``--device``, one after another, so the latencies are
measured on one machine.

Resources per task: ``num_gpus`` = ``gpus_per_run`` (default: the number of devices in ``--device``: ``0``
-> 1, ``0,1`` -> 2, ``cpu`` or empty -> 0); Ray then sets ``CUDA_VISIBLE_DEVICES`` for the task, so the run's
device string is renumbered from 0. ``num_cpus`` = ``cpus_per_run`` (default: the DataLoader workers + 1).
"""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path

from instseg.compare.runs import CompareError, Entry

RAY_HINT = "pip install 'instseg[tune]' (or: pip install 'ray[tune]')"


def default_gpus(device: str) -> float:
    """GPUs one run asks Ray for: one per listed CUDA device; none for 'cpu' or ''."""
    d = (device or "").strip().lower()
    if d in ("", "cpu", "mps"):
        return 0.0
    return float(len([x for x in d.replace("cuda:", "").split(",") if x.strip()]))


def _task_device(device: str) -> str:
    """Inside a Ray task the visible GPUs are renumbered from 0: '3' -> '0', '2,5' -> '0,1'."""
    d = (device or "").strip()
    if d.lower() in ("", "cpu", "mps"):
        return d
    return ",".join(str(i) for i in range(len([x for x in d.split(",") if x.strip()])))


def _train_task(arch: str, size: str, seed: int, p, out: str, name: str) -> Entry:
    """The body of one Ray task: train (or find finished) one entry; where it ran goes into the entry."""
    from instseg.compare.runner import train_entry

    entry = train_entry(arch, size, seed, replace(p, device=_task_device(p.device)), Path(out), name)
    entry.trained_on = f"ray:{socket.gethostname()}:pid{os.getpid()}"
    return entry


def _unreachable(address: str, timeout: float = 5.0) -> str | None:
    """Why nothing accepts a TCP connection at ``host:port`` (also ``ray://host:port``); None = it does, or
    the address is not of that form ('auto', 'local')."""
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return None
    except OSError as e:
        return f"{type(e).__name__}: {e.strerror or e}"


def connect(address: str) -> None:
    """ray.init(address) once per process; CompareError naming the address when no cluster answers."""
    try:
        import ray
    except ImportError as e:
        raise CompareError(f"--ray-address {address}: Ray is not installed; {RAY_HINT}") from e
    if ray.is_initialized():
        return
    why = _unreachable(address)
    if why:  # ray.init itself waits minutes on an address where nothing listens
        raise CompareError(f"--ray-address {address}: no Ray cluster answers there ({why}); start one with "
                           "`ray start --head` and pass the address it prints (or 'auto' on a cluster node)")
    try:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise CompareError(f"--ray-address {address}: no Ray cluster answers there ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else ''}); start one with `ray start --head` and "
                           "pass the address it prints (or 'auto' on a cluster node)") from e


def train_entries_ray(jobs: list[tuple[str, str, int, str]], p, out: Path, address: str, *,
                      gpus_per_run: float | None = None, cpus_per_run: float | None = None,
                      progress=print) -> list[Entry]:
    """Train ``jobs`` ((arch, size, seed, name), checked already) as Ray tasks; entries in ``jobs`` order.
    A task that dies (worker killed, node lost) becomes a failed entry, like a training that raised."""
    connect(address)
    import ray

    gpus = default_gpus(p.device) if gpus_per_run is None else float(gpus_per_run)
    cpus = float(p.workers + 1) if cpus_per_run is None else float(cpus_per_run)
    task = ray.remote(_train_task).options(num_gpus=gpus, num_cpus=cpus, max_retries=0, name="instseg-compare")
    out = Path(out).resolve()
    p = replace(p, data=Path(p.data).resolve())  # the tasks' working folder is not this one
    refs = {}
    for arch, size, seed, name in jobs:
        refs[task.remote(arch, size, seed, p, str(out), name)] = (arch, size, seed, name)
        progress(f"[compare] {name}: submitted to Ray at {address} ({gpus:g} GPU, {cpus:g} CPU)")
    done: dict[str, Entry] = {}
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        arch, size, seed, name = refs[ready[0]]
        try:
            entry = ray.get(ready[0])
        except Exception as e:  # the task itself died: the others go on
            msg = str(e).strip().splitlines()[-1] if str(e).strip() else ""
            entry = Entry(name=name, architecture=arch, size=size, seed=seed, error=f"Ray task failed: "
                          f"{type(e).__name__}: {msg}"[:300], root=out / name if (out / name).exists() else None)
        done[name] = entry
        progress(f"[compare] {name}: " + ("done" if entry.ok and not entry.resumed else
                                          "finished earlier, not retrained" if entry.ok else entry.error)
                 + (f" ({entry.trained_on})" if entry.trained_on else ""))
    return [done[name] for *_, name in jobs]


__all__ = ["connect", "default_gpus", "train_entries_ray", "RAY_HINT"]
