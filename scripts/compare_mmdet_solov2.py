"""Compare instseg's native SOLOv2 with MMDetection 3.3.0's, size by size, on the same weights and input.

For each size: build MMDetection's SOLOv2 from its config (the mmdet config files for the mmdet sizes, an
mmdet config dict for instseg's own sizes), give it random weights, copy its ``state_dict`` into instseg's
model (strict: no missing or unexpected keys), then compare on one random batch:
  preprocess  MMDetection's data preprocessor (BGR in, bgr_to_rgb) vs instseg's (RGB uint8 in)
  head        kernels, category logits and mask features          (max abs diff, target 1e-5)
  loss        loss_mask and loss_cls on the same targets          (abs diff, target 1e-4)
  masks       post-processed masks / scores / labels              (differing pixels, max score diff)

Run: PYTHONPATH=src /tmp/mmenv/bin/python scripts/compare_mmdet_solov2.py [--sizes nano light-r18 ...]
Needs mmdet 3.3.0 + mmcv 2.x; instseg's own code needs only torch/torchvision/numpy.
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

MMDET_CONFIG_FILES = {
    "light-r18": "solov2-light_r18_fpn_ms-3x_coco.py",
    "light-r34": "solov2-light_r34_fpn_ms-3x_coco.py",
    "light-r50": "solov2-light_r50_fpn_ms-3x_coco.py",
    "r50": "solov2_r50_fpn_1x_coco.py",
    "r101": "solov2_r101_fpn_ms-3x_coco.py",
}


@dataclass
class Row:
    size: str
    keys: int
    preprocess: float
    head: float
    loss_mask: float
    loss_cls: float
    n_det: tuple[int, int]
    mask_pixels_diff: int
    score: float
    labels_equal: bool

    def ok(self) -> bool:
        return (self.preprocess < 1e-4 and self.head < 1e-5 and self.loss_mask < 1e-4 and self.loss_cls < 1e-4
                and self.n_det[0] == self.n_det[1] and self.mask_pixels_diff == 0 and self.score < 1e-5 and self.labels_equal)


def mmdet_model_cfg(size: str):
    """The mmdet ``model`` config of ``size``; instseg's own sizes are derived from the light-r50 file."""
    import mmdet
    from mmengine.config import Config

    from instseg.models.solov2.config import get_solov2_config

    folder = Path(mmdet.__file__).parent / ".mim" / "configs" / "solov2"
    if size in MMDET_CONFIG_FILES:
        cfg = Config.fromfile(str(folder / MMDET_CONFIG_FILES[size])).model
    else:
        c = get_solov2_config(size)
        cfg = Config.fromfile(str(folder / MMDET_CONFIG_FILES["light-r50"])).model
        cfg.backbone.depth = c.depth
        cfg.neck.in_channels = list(c.backbone_channels)
        cfg.neck.out_channels = c.fpn_channels
        h = cfg.mask_head
        h.in_channels, h.feat_channels, h.stacked_convs = c.fpn_channels, c.head_channels, c.stacked_convs
        h.scale_ranges = tuple(tuple(r) for r in c.scale_ranges)
        h.mask_feature_head.feat_channels = c.mask_feat_channels
        h.mask_feature_head.out_channels = c.mask_out_channels
    cfg.backbone.init_cfg = None  # random init: no download
    return cfg


def make_batch(seed: int, b: int = 2, h: int = 256, w: int = 320, stride: int = 4):
    """Random RGB images and 3 random rectangle/ellipse instances per image (stride-4 masks)."""
    g = np.random.default_rng(seed)
    images = torch.from_numpy(g.integers(0, 256, (b, 3, h, w), dtype=np.uint8))
    targets = []
    for _ in range(b):
        n = 3
        masks = np.zeros((n, h // stride, w // stride), np.uint8)
        yy, xx = np.mgrid[: h // stride, : w // stride]
        for k in range(n):
            cy, cx = g.uniform(8, h // stride - 8), g.uniform(8, w // stride - 8)
            ry, rx = g.uniform(3, 25), g.uniform(3, 30)
            masks[k] = (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1) if k % 2 else (
                (abs(yy - cy) <= ry) & (abs(xx - cx) <= rx))
        boxes = []
        for m in masks:
            ys, xs = np.nonzero(m)
            boxes.append([xs.min() * stride, ys.min() * stride, (xs.max() + 1) * stride, (ys.max() + 1) * stride])
        targets.append({"labels": torch.from_numpy(g.integers(0, 3, n)).long(),
                        "boxes": torch.tensor(boxes, dtype=torch.float32), "masks": torch.from_numpy(masks)})
    return images, targets


def compare(size: str, num_classes: int = 3, seed: int = 0, cls_scale: float = 30.0, cls_bias: float = -1.0) -> Row:
    """One size. For the post-processing check the category layer's weights are multiplied by ``cls_scale``
    and its biases centred on ``cls_bias``: (30, -1) fills max_per_img (100), (1, -3.2) leaves fewer."""
    import torch.nn.functional as F
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmdet.utils import register_all_modules
    from mmengine.structures import InstanceData

    from instseg.models.solov2 import build_solov2
    from instseg.models.solov2.weights import load_solov2_state

    from mmengine.logging import MMLogger

    register_all_modules()
    MMLogger.get_current_instance().setLevel("ERROR")  # init_weights logs every parameter at INFO
    torch.manual_seed(seed)
    cfg = mmdet_model_cfg(size)
    cfg.mask_head.num_classes = num_classes
    mm = MODELS.build(cfg)
    mm.init_weights()
    state = mm.state_dict()
    ours = build_solov2(size, num_classes)
    load_solov2_state(ours, copy.deepcopy(state), f"mmdet {size}")
    mm.eval()
    ours.eval()

    images, targets = make_batch(seed)
    b, _, h, w = images.shape
    samples = []
    for t in targets:
        full = t["masks"].repeat_interleave(4, 1).repeat_interleave(4, 2).numpy()
        s = DetDataSample(metainfo={"img_shape": (h, w), "ori_shape": (h, w), "pad_shape": (h, w),
                                    "batch_input_shape": (h, w), "scale_factor": (1.0, 1.0)})
        s.gt_instances = InstanceData(bboxes=t["boxes"], labels=t["labels"], masks=BitmapMasks(full, h, w))
        samples.append(s)
    with torch.no_grad():
        data = mm.data_preprocessor({"inputs": list(images.flip(1)), "data_samples": samples}, False)
        x_mm = data["inputs"]
        x_ours = ours.preprocess(images)
        pre = (x_mm - x_ours).abs().max().item()
        out_mm = mm.mask_head(mm.extract_feat(x_ours))
        out_ours = ours.forward_normalized(x_ours)
        head = max((a - c).abs().max().item() for la, lc in zip(out_mm[:2], out_ours[:2]) for a, c in zip(la, lc))
        head = max(head, (out_mm[2] - out_ours[2]).abs().max().item())

        metas = [s.metainfo for s in samples]
        loss_mm = mm.mask_head.loss_by_feat(*out_mm, [s.gt_instances for s in samples], metas)
        loss_ours = ours.forward_train(images, targets)
        # spread the category scores so that random weights give detections above score_thr 0.1
        cls_weight = state["mask_head.conv_cls.weight"].clone() * cls_scale  # state_dict() shares mm's storage
        for model in (mm, ours):
            model.mask_head.conv_cls.weight.copy_(cls_weight)
            model.mask_head.conv_cls.bias.copy_(torch.linspace(cls_bias - 1, cls_bias + 1, num_classes))
        out_mm = mm.mask_head(mm.extract_feat(x_ours))
        res_mm = mm.mask_head.predict_by_feat(list(out_mm[0]), list(out_mm[1]), out_mm[2], metas)
        res_ours = ours.predict(images, score_thr=0.0, max_det=100)
    diff_px, score, dets, labels_equal = 0, 0.0, (0, 0), True
    for rm, ro in zip(res_mm, res_ours):
        dets = (dets[0] + len(rm.scores), dets[1] + len(ro["scores"]))
        if len(rm.scores) == len(ro["scores"]):
            diff_px += int((rm.masks.bool() != (ro["masks"] > 0.5)).sum())
            score = max(score, (rm.scores - ro["scores"]).abs().max().item() if len(rm.scores) else 0.0)
            labels_equal &= torch.equal(rm.labels.long(), ro["labels"])
        else:
            diff_px = -1  # different detection counts: masks not comparable
    return Row(size, len(state), pre, head, abs(loss_mm["loss_mask"].item() - loss_ours["loss_mask"].item()),
               abs(loss_mm["loss_cls"].item() - loss_ours["loss_cls"].item()), dets, diff_px, score, labels_equal)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["nano", "medium", "light-r18", "r50"])
    parser.add_argument("--cls", nargs="+", default=["30,-1", "1,-3.2"],
                        help="scale,bias of the category layer for the post-processing check (dense, sparse)")
    args = parser.parse_args(argv)
    print(f"{'size':10} {'cls':>7} {'keys':>5} {'preproc':>9} {'head':>9} {'d_loss_mask':>11} {'d_loss_cls':>10} "
          f"{'dets mm/ours':>12} {'mask px diff':>12} {'d_score':>9} ok")
    ok = True
    for size, cls in ((s, c) for s in args.sizes for c in args.cls):
        scale, bias = map(float, cls.split(","))
        r = compare(size, cls_scale=scale, cls_bias=bias)
        ok &= r.ok()
        print(f"{r.size:10} {cls:>7} {r.keys:5d} {r.preprocess:9.2e} {r.head:9.2e} {r.loss_mask:11.2e} {r.loss_cls:10.2e} "
              f"{r.n_det[0]:>5}/{r.n_det[1]:<6} {r.mask_pixels_diff:12d} {r.score:9.2e} {r.ok()}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
