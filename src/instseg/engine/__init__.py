"""The training engine: loop, schedules, optimizer groups, EMA, checkpoints, logging, DDP, run folders."""
