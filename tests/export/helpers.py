"""Shared helpers of the export tests: random-init checkpoints whose detections are decisive (scores spread
well apart, mask logits far from 0) so that PyTorch and onnxruntime can be compared instance by instance,
and the comparison itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TOL_BOX_PX = 1e-3
TOL_SCORE = 1e-4
MIN_MASK_IOU = 0.99


def _spread(conv, std: float, bias: float | None = None) -> None:
    import torch

    with torch.no_grad():
        conv.weight.normal_(0.0, std)
        if bias is not None and conv.bias is not None:
            conv.bias.fill_(bias)


def _demo_batch(imgsz: int, n: int = 3):
    """The first ``n`` demo images of :func:`write_images` (uncropped), uint8 [n,3,imgsz,imgsz]."""
    import torch

    from instseg.data.demo import make_demo_image

    return torch.stack([torch.from_numpy(np.ascontiguousarray(make_demo_image(np.random.default_rng([0, i]), imgsz)[0]))
                        .permute(2, 0, 1) for i in range(n)])


def _calibrate_bn(module, x) -> None:
    """BatchNorm running statistics of one batch ``x`` through ``module``, as a trained network has them;
    variances floored at their mean, so no near-empty channel amplifies rounding errors (a random network
    with BN statistics (0, 1) is chaotic: 1e-4 relative differences between runtimes, none after this)."""
    import torch

    bns = [m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = 1.0
    module.train()
    with torch.no_grad():
        module(x)
        for bn in bns:
            bn.running_var.clamp_(min=float(bn.running_var.mean()))
    module.eval()


def _calibrate_frozen_bn(model, x) -> None:
    """Detectron2's FrozenBatchNorm2d (its ResNets' default) given the statistics of its input on ``x``,
    layer by layer in one pass, variances floored as in ``_calibrate_bn``: with the identity statistics of
    a random init the activations grow through 50 layers until boxes and scores saturate."""
    import torch
    from detectron2.layers import FrozenBatchNorm2d

    def set_stats(bn, inputs):
        v = inputs[0].var((0, 2, 3))
        bn.running_mean.copy_(inputs[0].mean((0, 2, 3)))
        bn.running_var.copy_(v.clamp(min=float(v.mean())))

    hooks = [m.register_forward_pre_hook(set_stats) for m in model.modules() if isinstance(m, FrozenBatchNorm2d)]
    with torch.no_grad():
        model.predict(x, 0.5, 10)
    for h in hooks:
        h.remove()


def _calibrate(model, imgsz: int, layers: dict) -> None:
    """Rescale each conv of ``layers`` {conv: (target std of its output, bias)} so that, on a demo image,
    its output spreads with that std around that bias."""
    import torch

    from instseg.data.demo import make_demo_image

    x = _demo_batch(imgsz)
    _calibrate_bn(model, x)
    seen: dict = {}
    hooks = [conv.register_forward_hook(lambda mod, i, o: seen.setdefault(mod, []).append(o)) for conv in layers]
    with torch.no_grad():
        model.predict(x, 0.5, 10)  # the calibration images are the tests' images (write_images)
        for h in hooks:
            h.remove()
        for conv, (target, bias) in layers.items():
            out = torch.cat([o.flatten() for o in seen[conv]]) - (conv.bias.mean() if conv.bias is not None else 0)
            conv.weight.mul_(target / float(out.std().clamp(min=1e-12)))
            if conv.bias is not None:
                conv.bias.fill_(bias)


def biased_model(arch: str, size: str, nc: int, imgsz: int, seed: int = 0):
    """A random-init model whose class logits are biased up (detections exist) and spread (no near-ties),
    and whose mask logits are far from the threshold, so that PyTorch and onnxruntime can be compared
    instance by instance."""
    import torch
    from torch import nn

    from instseg.models.build import build_model

    torch.manual_seed(seed)
    model = build_model(arch, size, nc, imgsz=imgsz).eval()
    if arch == "rtmdet-ins":
        head = model.bbox_head
        for m in head.modules():  # MMDetection's N(0, 0.01) head init makes every output a constant
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        layers = {c: (1.5, -1.0) for c in head.rtm_cls}
        layers.update({c: (0.5, 1.0) for c in head.rtm_reg})
        layers.update({c: (1.0, 0.0) for c in head.rtm_kernel})
        layers[head.mask_head.projection] = (1.0, 0.0)
        _calibrate(model, imgsz, layers)
    elif arch == "solov2":
        head = model.mask_head
        _spread(head.conv_cls, 0.05, -1.5)
        _spread(head.conv_kernel, 0.2)
    elif arch == "maskrcnn":
        _calibrate_bn(model.model.backbone, model.model.transform.normalize(_demo_batch(imgsz).float() / 255))
        rh = model.model.roi_heads
        _spread(rh.box_predictor.cls_score, 0.05, 0.0)
        with torch.no_grad():
            rh.box_predictor.cls_score.bias[0] = -2.0  # background less likely: foreground detections
        _spread(rh.mask_predictor.mask_fcn_logits, 0.5)
    elif arch == "detectron2-maskrcnn":
        _calibrate_frozen_bn(model, _demo_batch(imgsz))
        rh = model.model.roi_heads
        _spread(rh.box_predictor.cls_score, 0.05, 0.0)
        with torch.no_grad():
            rh.box_predictor.cls_score.bias[-1] = -2.0  # Detectron2's background is the last logit
        # small box deltas (RPN and head): a random regressor amplifies 1e-7 input differences into 1e-3 px
        _spread(model.model.proposal_generator.rpn_head.anchor_deltas, 1e-3, 0.0)
        _spread(rh.box_predictor.bbox_pred, 1e-3, 0.0)
        _spread(rh.mask_head.predictor, 2.0)
    return model.eval()


def biased_yolo(path: Path) -> Path:
    """A random-init YOLO11n-seg (80 classes, as its YAML builds it) saved by Ultralytics, its class-logit
    biases raised so detections exist."""
    import torch

    from instseg.backends.ultralytics import configure_offline

    configure_offline(quiet=True)
    from ultralytics import YOLO

    torch.manual_seed(0)
    yolo = YOLO("yolo11n-seg.yaml", task="segment")
    _calibrate_bn(yolo.model, _demo_batch(160).float() / 255)
    for p in yolo.model.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        for branch in yolo.model.model[-1].cv3:
            branch[-1].weight.normal_(0.0, 0.05)
            branch[-1].bias.fill_(-2.0)
    yolo.save(path)
    return path


def write_checkpoint(model, arch: str, size: str, names: list[str], imgsz: int, path: Path) -> Path:
    from instseg.engine.checkpoint import save_checkpoint

    return save_checkpoint(path, {"model": model.state_dict(), "architecture": arch, "size": size,
                                  "names": list(names), "imgsz": imgsz, "epoch": 0})


def write_images(folder: Path, n: int = 3, imgsz: int = 160, seed: int = 0) -> list[Path]:
    """``n`` demo images (shapes on textured backgrounds), the last one cropped to a non-square size so
    the letterbox pads and the inverse mapping is exercised."""
    import cv2

    from instseg.data.demo import make_demo_image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img, _ = make_demo_image(np.random.default_rng([seed, i]), imgsz)
        if i == n - 1:
            img = img[: imgsz * 2 // 3, :]
        path = folder / f"img{i}.png"
        cv2.imwrite(str(path), img[:, :, ::-1])
        paths.append(path)
    return paths


def mask_iou(a: dict, b: dict) -> float:
    from instseg.data.masks import rle_to_mask

    ma, mb = rle_to_mask(a).astype(bool), rle_to_mask(b).astype(bool)
    union = (ma | mb).sum()
    return 1.0 if union == 0 else float((ma & mb).sum() / union)


def _match(r, e) -> list[int]:
    """For each reference instance, the exported instance it corresponds to: the same index when the two
    orders agree, else the unused one of the same label closest in score, then box (two detections whose
    scores differ by ~1e-6 may swap places between runtimes; that is not a difference in the model)."""
    if (np.array_equal(r.labels, e.labels) and np.abs(r.scores - e.scores).max() <= TOL_SCORE
            and np.abs(r.boxes - e.boxes).max() <= TOL_BOX_PX):
        return list(range(len(r)))
    free, out = set(range(len(e))), []
    for k in range(len(r)):
        cand = [j for j in free if e.labels[j] == r.labels[k]] or list(free)
        j = min(cand, key=lambda j: (round(abs(float(e.scores[j] - r.scores[k])) / TOL_SCORE),
                                     float(np.abs(e.boxes[j] - r.boxes[k]).max())))
        free.discard(j)
        out.append(j)
    return out


def compare(reference: list, exported: list) -> dict:
    """Worst differences between two prediction lists of the same images, instance by instance."""
    stats = {"images": len(reference), "detections": 0, "count_mismatch": 0, "box_px": 0.0, "score": 0.0,
             "label_mismatch": 0, "min_mask_iou": 1.0}
    assert len(reference) == len(exported)
    for r, e in zip(reference, exported):
        assert (r.height, r.width) == (e.height, e.width)
        if len(r) != len(e):
            stats["count_mismatch"] += 1
            continue
        stats["detections"] += len(r)
        if not len(r):
            continue
        j = _match(r, e)
        stats["box_px"] = max(stats["box_px"], float(np.abs(r.boxes - e.boxes[j]).max()))
        stats["score"] = max(stats["score"], float(np.abs(r.scores - e.scores[j]).max()))
        stats["label_mismatch"] += int((r.labels != e.labels[j]).sum())
        stats["min_mask_iou"] = min([stats["min_mask_iou"]] + [mask_iou(r.masks[k], e.masks[i])
                                                               for k, i in enumerate(j)])
    return stats


def assert_faithful(stats: dict, min_detections: int = 3) -> None:
    assert stats["count_mismatch"] == 0, stats
    assert stats["detections"] >= min_detections, stats
    assert stats["label_mismatch"] == 0, stats
    assert stats["box_px"] <= TOL_BOX_PX, stats
    assert stats["score"] <= TOL_SCORE, stats
    assert stats["min_mask_iou"] >= MIN_MASK_IOU, stats
