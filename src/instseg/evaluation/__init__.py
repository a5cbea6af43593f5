"""COCO segm/bbox evaluation: one evaluator for every backend (see ``coco_eval`` for the decisions taken)."""

from instseg.evaluation.coco_eval import ENGINES, evaluate
from instseg.evaluation.metrics import Metrics, TypeMetrics
from instseg.evaluation.results import load_results, predictions_to_coco_results, write_results_json

__all__ = [
    "ENGINES",
    "Metrics",
    "TypeMetrics",
    "evaluate",
    "load_results",
    "predictions_to_coco_results",
    "write_results_json",
]
