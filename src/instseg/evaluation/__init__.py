"""COCO segm/bbox evaluation: one evaluator for every backend (see ``coco_eval`` for the decisions taken).

The names below are imported on first use (module ``__getattr__``), so importing one submodule, e.g.
``instseg.evaluation.metrics`` for :class:`Metrics`, does not load the evaluator and its dependencies.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

#: public name -> submodule that defines it
_EXPORTS = {
    "ENGINES": "coco_eval",
    "evaluate": "coco_eval",
    "Metrics": "metrics",
    "TypeMetrics": "metrics",
    "load_results": "results",
    "predictions_to_coco_results": "results",
    "write_results_json": "results",
}

__all__ = [
    "ENGINES",
    "Metrics",
    "TypeMetrics",
    "evaluate",
    "load_results",
    "predictions_to_coco_results",
    "write_results_json",
]

if TYPE_CHECKING:
    from instseg.evaluation.coco_eval import ENGINES, evaluate
    from instseg.evaluation.metrics import Metrics, TypeMetrics
    from instseg.evaluation.results import load_results, predictions_to_coco_results, write_results_json


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'instseg.evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"instseg.evaluation.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
