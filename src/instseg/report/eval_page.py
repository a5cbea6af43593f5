"""The evaluation pages: predictions as solid masks (green: true positive at IoU 0.5, red: false positive,
grey: on a crowd region), ground truth as dashed outlines (white: found, amber: missed), the class and score
of every prediction; a class filter and a score threshold; the images in three orders (worst own AP50
first, most errors first, by name), one set of pages each, sharing the thumbnails.

Predictions below :data:`DRAW_FLOOR` are not drawn (COCO scoring keeps 100 detections per image down to
score 0.001; drawing them all would make pages heavy and unreadable); they still count in every number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from instseg.data.types import ImageRecord
from instseg.report.cards import box_text, gt_shape, thumb_block
from instseg.report.geometry import class_color, label_anchor, rle_path
from instseg.report.html import esc, fmt, legend, page, pager, table
from instseg.report.matching import IGNORED, ImageMatch, match_image
from instseg.report.thumbs import write_thumb

PER_PAGE = 100
DRAW_FLOOR = 0.05
DEFAULT_THR = 0.25
ORDERS = {"worst": "worst AP50 first", "errors": "most errors first", "name": "by name"}


@dataclass
class EvalImage:
    """One image of the evaluation: its record, ground-truth shapes, predictions and their matching."""

    record: ImageRecord
    gt: list = field(default_factory=list)  # GtShape
    preds: list[dict] = field(default_factory=list)  # COCO results of this image, class index in "cls"
    match: ImageMatch = field(default_factory=ImageMatch)


def match_images(records: list[ImageRecord], results: list[dict], cat_to_cls: dict[int, int],
                 report_dir: Path) -> list[EvalImage]:
    """Thumbnails, ground-truth shapes and the matching of every image (``records`` carry ``image_id``)."""
    by_image: dict[int, list[dict]] = {}
    for r in results:
        by_image.setdefault(int(r["image_id"]), []).append({**r, "cls": cat_to_cls[int(r["category_id"])]})
    out = []
    for rec in records:
        thumb = write_thumb(report_dir, rec.path, rec.width, rec.height)
        shapes = [gt_shape(inst, rec, thumb.scale) for inst in rec.instances]
        preds = sorted(by_image.get(int(rec.image_id), []), key=lambda r: -float(r["score"]))
        m = match_image([s.rle for s in shapes], [s.cls for s in shapes], [s.crowd for s in shapes],
                        [p["segmentation"] for p in preds], [p["cls"] for p in preds], [p["score"] for p in preds])
        out.append(EvalImage(record=rec, gt=shapes, preds=preds, match=m))
    return out


def eval_card(e: EvalImage, report_dir: Path, names: list[str], label: str = "", prefix: str = "../") -> str:
    """One image's card: thumbnail, overlay, caption (``label`` first, e.g. the run's name), details;
    ``prefix`` leads from the page to the report folder."""
    rec = e.record
    thumb = write_thumb(report_dir, rec.path, rec.width, rec.height)
    svg, gt_rows, gt_attrs, p_rows, p_attrs = [], [], [], [], []
    for g, s in enumerate(e.gt):
        ms = e.match.gt_match_score[g]
        svg.append(f'<path class="inst gt" data-cls="{s.cls}" data-ms="{ms:.4f}" d="{s.path}">'
                   f"<title>ground truth: {esc(names[s.cls])}</title></path>")
        status = "crowd (ignored)" if ms == IGNORED else "missed" if ms < 0 else f"found (score {ms:.3f})"
        gt_rows.append([g + 1, names[s.cls], box_text(s.box), s.area, status])
        gt_attrs.append(f'class="inst gt-row" data-cls="{s.cls}"')
    for i, p in enumerate(e.preds):
        score, st = float(p["score"]), e.match.pred_status[i]
        p_rows.append([i + 1, names[p["cls"]], f"{score:.3f}", f"{e.match.pred_iou[i]:.2f}",
                       {1: "true positive", 0: "false positive", -1: "ignored (crowd)"}[st]])
        p_attrs.append(f'class="inst pred pred-row" data-cls="{p["cls"]}" data-score="{score:.4f}"')
        if score < DRAW_FLOOR:
            continue
        svg.append(f'<path class="inst pred" data-cls="{p["cls"]}" data-score="{score:.4f}" data-st="{st}" '
                   f'd="{rle_path(p["segmentation"], thumb.scale)}"><title>{esc(names[p["cls"]])} {score:.3f}</title></path>')
        x1, y1, w, h = p.get("bbox") or [0, 0, 0, 0]
        x, y = label_anchor([x1, y1, x1 + w, y1 + h], thumb.scale)
        svg.append(f'<text class="inst pred" data-cls="{p["cls"]}" data-score="{score:.4f}" x="{x}" y="{y}">'
                   f"{esc(names[p['cls']])} {score:.2f}</text>")
    classes = " ".join(str(c) for c in sorted({s.cls for s in e.gt} | {p["cls"] for p in e.preds
                                                                      if p["score"] >= DRAW_FLOOR}))
    errs = e.match.errors(DEFAULT_THR)
    detail = ("<h3>ground truth</h3>" + table(["#", "class", "box x1, y1, x2, y2", "mask area", "status"], gt_rows,
                                             gt_attrs, cls="gt-table")
              + f"<h3>predictions ({len(e.preds)}; rows follow the score threshold)</h3>"
              + table(["#", "class", "score", "IoU", "status at IoU 0.5"], p_rows, p_attrs, cls="pred-table"))
    return (f'<div class="card" data-classes="{classes}" data-ap="{fmt(e.match.ap50, ".4f")}" '
            f'data-image="{esc(rec.path.name)}">{thumb_block(thumb, "".join(svg), prefix)}'
            f'<div class="cap">{"<b>" + esc(label) + "</b> &middot; " if label else ""}<b>{esc(rec.path.name)}</b> &middot; AP50 <b class="ap">{fmt(e.match.ap50)}</b>'
            f' &middot; errors <b class="errs">{errs}</b> &middot; {len(e.gt)} gt</div>'
            f"<details><summary>details</summary>{detail}</details></div>")


def order_images(images: list[EvalImage], order: str) -> list[EvalImage]:
    """``worst``: own AP50 ascending (images without ground truth last), then errors; ``errors``: errors
    at the default threshold descending; ``name``: file name."""
    if order == "worst":
        return sorted(images, key=lambda e: (math.isnan(e.match.ap50), e.match.ap50 if not math.isnan(e.match.ap50)
                                             else 0.0, -e.match.errors(DEFAULT_THR), e.record.path.name))
    if order == "errors":
        return sorted(images, key=lambda e: (-e.match.errors(DEFAULT_THR), e.record.path.name))
    return sorted(images, key=lambda e: e.record.path.name)


def page_name(order: str, i: int) -> str:
    return f"eval/{order}-{i:03d}.html"


def write_eval_pages(report_dir: Path, images: list[EvalImage], names: list[str], *, title: str,
                     per_page: int = PER_PAGE) -> dict[str, list[str]]:
    """Write every order's pages; returns order -> page paths relative to ``report_dir``."""
    from instseg.io import atomic_write_text

    report_dir = Path(report_dir)
    cards = {id(e): eval_card(e, report_dir, names) for e in images}
    colors = [class_color(k) for k in range(len(names))]
    n_pages = max(1, -(-len(images) // per_page))
    written: dict[str, list[str]] = {}
    keys = ('<span class="key"><span class="sw" style="background:var(--tp)"></span>true positive</span>'
            '<span class="key"><span class="sw" style="background:var(--fp)"></span>false positive</span>'
            '<span class="key"><span class="sw" style="border:2px dashed #999"></span>ground truth found</span>'
            '<span class="key"><span class="sw" style="border:2px dashed var(--miss)"></span>missed</span>')
    for order, label in ORDERS.items():
        ranked = order_images(images, order)
        written[order] = []
        for p in range(n_pages):
            chunk = ranked[p * per_page:(p + 1) * per_page]
            others = " ".join(f'<a href="{esc(Path(page_name(o, 1)).name)}">{esc(lab)}</a>' if o != order
                              else f"<b>{esc(lab)}</b>" for o, lab in ORDERS.items())
            body = (f'<div class="toolbar">{legend(names, colors)}</div>'
                    f'<div class="toolbar"><label>score &ge; <input type="range" id="score" min="{DRAW_FLOOR}" '
                    f'max="1" step="0.01" value="{DEFAULT_THR}"> <b id="score-value">{DEFAULT_THR:.2f}</b></label>'
                    f"{keys}<span>order: {others}</span>"
                    f'<span>showing <b id="shown">{len(chunk)}</b> of {len(chunk)} images</span></div>'
                    f"{pager(n_pages, p + 1, lambda i: Path(page_name(order, i)).name)}"
                    f'<div class="grid">{"".join(cards[id(e)] for e in chunk)}</div>'
                    f"{pager(n_pages, p + 1, lambda i: Path(page_name(order, i)).name)}")
            rel = page_name(order, p + 1)
            atomic_write_text(report_dir / rel, page(f"{title}: {label}, page {p + 1}/{n_pages}", body,
                                                     home="../index.html"))
            written[order].append(rel)
    return written


def image_summary(images: list[EvalImage]) -> dict:
    """Counts at the default threshold (the index page shows them)."""
    tp = sum(1 for e in images for s, st in zip(e.match.pred_scores, e.match.pred_status) if st == 1 and s >= DEFAULT_THR)
    fp = sum(e.match.false_positives(DEFAULT_THR) for e in images)
    fn = sum(e.match.missed(DEFAULT_THR) for e in images)
    aps = np.array([e.match.ap50 for e in images], np.float64)
    return {"images": len(images), "tp": tp, "fp": fp, "missed": fn, "threshold": DEFAULT_THR,
            "mean_image_ap50": float(np.nanmean(aps)) if np.isfinite(aps).any() else math.nan}


__all__ = ["EvalImage", "eval_card", "match_images", "write_eval_pages", "order_images", "image_summary", "DRAW_FLOOR",
           "DEFAULT_THR", "PER_PAGE", "ORDERS"]
