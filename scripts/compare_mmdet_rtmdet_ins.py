"""Compare instseg's native RTMDet-Ins with MMDetection 3.3.0's, size by size, on the same weights and input.

For each size: build MMDetection's RTMDet-Ins from its config file (SyncBN -> BN), give it its random init
(the head perturbed with N(0, 0.02) noise and class bias -2 so that scores spread and detections exist),
copy its ``state_dict`` into instseg's model (strict: no missing or unexpected key), then on one random
batch (2 images, 256x320) compare:
  pre   MMDetection's data preprocessor (BGR uint8 in, as cv2 loads) vs instseg's (RGB in): max abs diff
  head  cls logits, box distances, kernels, prototypes (eval mode): max abs diff / max(1, |ref|)
  loss  loss_cls, loss_bbox, loss_mask on the same targets (train mode): abs diff of each
  bn    BN running mean/var after that training forward: max abs diff
  pred  post-processed detections (score_thr 0.05, nms_pre 1000, NMS 0.6, max 100, mask thr 0.5):
        counts, labels equal, max box and score diff, fraction of differing mask pixels

Targets: block masks drawn at stride 4 and blown up to full resolution for MMDetection (which samples them
back at [2::4] and takes centres of mass at full resolution), boxes the masks' pixel extents.

Run: PYTHONPATH=src:scripts /tmp/mmenv/bin/python scripts/compare_mmdet_rtmdet_ins.py [--sizes tiny s ...]
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


@dataclass
class Row:
    size: str
    keys: int
    pre: float
    head: float
    loss_cls: float
    loss_bbox: float
    loss_mask: float
    loss_ref: tuple[float, float, float]
    bn_stats: float
    n_det: tuple[int, int]
    labels_equal: bool
    box: float
    score: float
    mask_pixels: float


def make_batch(seed: int = 0, n_img: int = 2, hw: tuple[int, int] = (256, 320), num_classes: int = 80):
    """uint8 RGB images [B,3,H,W] and per image (labels, boxes xyxy, stride-4 masks, full-res masks)."""
    g = np.random.default_rng(seed)
    h, w = hw
    images = torch.from_numpy(g.integers(0, 256, (n_img, 3, h, w), dtype=np.uint8))
    targets = []
    for i in range(n_img):
        n = 3 + i
        small = np.zeros((n, h // 4, w // 4), np.uint8)
        yy, xx = np.mgrid[: h // 4, : w // 4]
        for j in range(n):
            cy, cx = g.uniform(8, h // 4 - 8), g.uniform(8, w // 4 - 8)
            ry, rx = g.uniform(3, h // 10), g.uniform(3, w // 10)
            small[j] = (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) <= 1
        full = small.repeat(4, axis=1).repeat(4, axis=2)
        boxes = []
        for m in full:
            ys, xs = np.nonzero(m)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        labels = torch.from_numpy(g.integers(0, num_classes, n)).long()
        targets.append((labels, torch.tensor(boxes, dtype=torch.float32), torch.from_numpy(small), full))
    return images, targets


def mmdet_samples(targets, hw, with_gt: bool):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData

    samples = []
    for labels, boxes, _, full in targets:
        s = DetDataSample(
            metainfo={
                "img_shape": hw,
                "ori_shape": hw,
                "pad_shape": hw,
                "batch_input_shape": hw,
                "scale_factor": (1.0, 1.0),
            }
        )
        if with_gt:
            s.gt_instances = InstanceData(
                bboxes=boxes.clone(), labels=labels.clone(), masks=BitmapMasks(full, *hw)
            )
        samples.append(s)
    return samples


def compare(size: str, seed: int = 0) -> Row:
    from mmdet_rtmdet_ins_env import build_mmdet_rtmdet_ins

    from instseg.models.rtmdet_ins import build_rtmdet_ins
    from instseg.models.rtmdet_ins.weights import load_rtmdet_ins_state

    torch.manual_seed(seed)
    ref, _ = build_mmdet_rtmdet_ins(size, 80)
    with torch.no_grad():
        for name, p in ref.bbox_head.named_parameters():
            p.add_(torch.randn_like(p) * 0.02)
        for conv in ref.bbox_head.rtm_cls:
            conv.bias.fill_(-2.0)
    ours = build_rtmdet_ins(size, 80)
    state = copy.deepcopy(ref.state_dict())
    load_rtmdet_ins_state(ours, state, f"mmdet {size}")
    images, targets = make_batch(seed)
    hw = tuple(images.shape[-2:])

    ref.eval(), ours.eval()
    with torch.no_grad():
        data = ref.data_preprocessor(
            {"inputs": list(images.flip(1)), "data_samples": mmdet_samples(targets, hw, False)}, False
        )
        pre = (data["inputs"] - ours.normalize(images)).abs().max().item()
        r_out = ref.bbox_head(ref.extract_feat(data["inputs"]))
        o_out = ours.forward_heads(images)
        head = 0.0
        for r_list, o_list in zip(r_out, o_out):
            for r, o in zip(
                r_list if isinstance(r_list, (list, tuple)) else [r_list],
                o_list if isinstance(o_list, (list, tuple)) else [o_list],
            ):
                head = max(head, ((r - o).abs() / r.abs().clamp(min=1)).max().item())
        r_pred = ref.predict(data["inputs"], mmdet_samples(targets, hw, False), rescale=False)
        o_pred = ours.predict(images, score_thr=0.05, max_det=100)
    n_det, labels_equal, box, score, pix, total = [0, 0], True, 0.0, 0.0, 0, 0
    for r, o in zip(r_pred, o_pred):
        ri = r.pred_instances
        n_det[0] += len(ri.scores)
        n_det[1] += len(o["scores"])
        if len(ri.scores) != len(o["scores"]):
            labels_equal = False
            continue
        labels_equal &= bool((ri.labels == o["labels"]).all())
        if len(ri.scores):
            box = max(box, (ri.bboxes - o["boxes"]).abs().max().item())
            score = max(score, (ri.scores - o["scores"]).abs().max().item())
            pix += int((ri.masks != o["masks"]).sum())
            total += ri.masks.numel()

    ref.train(), ours.train()
    ref.load_state_dict(state), ours.load_state_dict(state)
    data = ref.data_preprocessor(
        {"inputs": list(images.flip(1)), "data_samples": mmdet_samples(targets, hw, True)}, True
    )
    r_loss = ref.loss(data["inputs"], data["data_samples"])
    r_loss = {
        k: float(sum(v).detach() if isinstance(v, (list, tuple)) else v.detach()) for k, v in r_loss.items()
    }
    o_loss = ours.forward_train(
        images, [{"labels": lab, "boxes": box_, "masks": small} for lab, box_, small, _ in targets]
    )
    o_loss = {k: float(v) for k, v in o_loss.items()}
    diff = {k: abs(r_loss[k] - o_loss[k]) for k in ("loss_cls", "loss_bbox", "loss_mask")}
    r_state, o_state = ref.state_dict(), ours.state_dict()
    bn = max(
        (r_state[k].float() - o_state[k].float()).abs().max().item()
        for k in r_state
        if k.endswith(("running_mean", "running_var"))
    )
    return Row(
        size,
        len(state),
        pre,
        head,
        diff["loss_cls"],
        diff["loss_bbox"],
        diff["loss_mask"],
        (r_loss["loss_cls"], r_loss["loss_bbox"], r_loss["loss_mask"]),
        bn,
        tuple(n_det),
        labels_equal,
        box,
        score,
        pix / max(total, 1),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["tiny", "s", "m", "l", "x"])
    args = ap.parse_args()
    import mmdet

    print(
        f"mmdet {mmdet.__version__}, torch {torch.__version__}; input 2x3x256x320; tolerances: head 1e-5, loss 1e-4"
    )
    print(
        f"{'size':5} {'keys':>5} {'pre':>8} {'head':>8} {'d_cls':>8} {'d_bbox':>8} {'d_mask':>8} "
        f"{'mmdet losses cls/bbox/mask':>27} {'bn stats':>8} {'dets':>9} {'labels':>6} {'box':>8} {'score':>8} {'mask px':>8}"
    )
    for size in args.sizes:
        r = compare(size)
        print(
            f"{r.size:5} {r.keys:5d} {r.pre:8.1e} {r.head:8.1e} {r.loss_cls:8.1e} {r.loss_bbox:8.1e} "
            f"{r.loss_mask:8.1e} {'/'.join(f'{v:.4f}' for v in r.loss_ref):>27} {r.bn_stats:8.1e} {r.n_det[0]:4d}/{r.n_det[1]:<4d} "
            f"{r.labels_equal!s:>6} {r.box:8.1e} {r.score:8.1e} {r.mask_pixels:8.1e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
