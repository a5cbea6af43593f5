"""``instseg compare``: several architectures, one dataset, one evaluator, one honest table.

* :mod:`~instseg.compare.runner`: the protocol, train mode (one run folder per ``-a ARCH:SIZE``), collect mode,
  the orchestration that writes ``compare.json`` / ``compare.csv``;
* :mod:`~instseg.compare.runs`: run folders as entries, the shared ground truth and its hash check;
* :mod:`~instseg.compare.score`: one evaluator on one ground truth, bootstrap intervals, pairwise P(A > B);
* :mod:`~instseg.compare.bootstrap`: per-image COCO matches computed once, re-accumulated per resample;
* :mod:`~instseg.compare.measure`: per-image latency, parameters, GFLOPs, peak memory, the same way for every backend;
* :mod:`~instseg.compare.report`: the JSON/CSV writers and the rich table;
* :mod:`~instseg.evaluation.gt_hash`: the ground-truth content hash (imports nothing of instseg).
"""

from instseg.evaluation.gt_hash import add_gt_sha256, gt_sha256

__all__ = ["gt_sha256", "add_gt_sha256"]
