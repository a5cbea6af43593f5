"""The numpy post-process of instseg's exported graphs: raw head outputs -> detections in input pixels.

Numpy only (no torch, no onnx), so a deployment that has onnxruntime and numpy can copy this one file.
Each function reproduces, step for step, the PyTorch post-process of its family (the fidelity tests in
``tests/export`` hold the two to 1e-3 px boxes, 1e-4 scores and mask IoU >= 0.99):

* RTMDet-Ins (``models/rtmdet_ins/postprocess.py``): per level the sigmoid scores above ``conf``, the best
  ``nms_pre`` (prior, class) pairs; boxes = prior point -/+ ltrb distances, clipped; zero-size boxes
  dropped; class-wise NMS; the ``max_det`` best; masks from the 3-layer dynamic 1x1 convs over the 8
  prototypes, upsampled bilinearly by 8 and thresholded.
* SOLOv2 (``models/solov2/postprocess.py``): the graph already applied sigmoid and point NMS; grid cells
  above ``score_thr`` get their mask from the dynamic 1x1 kernel, masks smaller than their level's stride
  are dropped, scores times maskness, Matrix NMS, masks upsampled bilinearly by the mask-feature stride.
* Mask R-CNN: post-processing is inside the graph (torchvision's own, traced); here only ``conf`` and
  ``max_det`` tighten what the graph kept at export time.

Every function returns ``{"boxes" float32 [K,4] xyxy, "scores" float32 [K], "labels" int64 [K] (0-based),
"masks" [K,H,W] (bool, or float probabilities for SOLOv2 and Mask R-CNN)}`` at the input resolution.
"""

from __future__ import annotations

import numpy as np

RTMDET_STRIDES = (8, 16, 32)


def sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) overflows to inf for x < -88: sigmoid 0, as it should
        return (1.0 / (1.0 + np.exp(-x.astype(np.float32)))).astype(np.float32)


def _linear_weights(src: np.ndarray, n_in: int, *, zero_pad: bool, dtype=np.float64) -> np.ndarray:
    """[len(src), n_in] float32 weights of 1-D linear interpolation at the source coordinates ``src``: the
    two neighbours ``floor(src)`` and ``floor(src) + 1``, their fractions computed in ``dtype``; outside
    ``[0, n_in)`` a neighbour is dropped (``zero_pad``, grid_sample's zero padding) or clamped to the end
    (interpolate's border)."""
    i0 = np.floor(src).astype(np.int64)
    w1 = (src - i0).astype(dtype)
    m = np.zeros((len(src), n_in), np.float32)
    rows = np.arange(len(src))
    for idx, w in ((i0, dtype(1) - w1), (i0 + 1, w1)):
        if zero_pad:
            ok = (idx >= 0) & (idx < n_in)
            rows_ok, idx, w = rows[ok], idx[ok], w[ok]
        else:
            rows_ok, idx = rows, np.minimum(idx, n_in - 1)
        np.add.at(m, (rows_ok, idx), w)
    return m


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] weights of 1-D bilinear resizing with align_corners=False (PyTorch's rule: source
    coordinate ``(dst + 0.5) * n_in / n_out - 0.5`` clamped at 0, the right neighbour clamped at the end)."""
    scale = n_in / n_out
    src = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5, 0.0).astype(np.float32)
    return _linear_weights(src, n_in, zero_pad=False)


def resize_bilinear(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Maps ``x`` [N, h, w] resized to [N, out_h, out_w] (bilinear, align_corners=False), float32."""
    a_h = _bilinear_matrix(x.shape[1], out_h)
    a_w = _bilinear_matrix(x.shape[2], out_w)
    return np.matmul(np.matmul(a_h, x.astype(np.float32)), a_w.T)


def _fit(masks: np.ndarray, h: int, w: int) -> np.ndarray:
    """Crop or zero-pad [K, h', w'] on the bottom/right to [K, h, w]."""
    masks = masks[:, :h, :w]
    if masks.shape[1:] != (h, w):
        masks = np.pad(masks, ((0, 0), (0, h - masks.shape[1]), (0, w - masks.shape[2])))
    return masks


def _order_desc(scores: np.ndarray) -> np.ndarray:
    return np.argsort(-scores, kind="stable")


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float) -> np.ndarray:
    """Greedy NMS: indices kept, by decreasing score; a box goes when its IoU with a kept box is > iou_thr
    (torchvision.ops.nms; areas without the +1)."""
    order = _order_desc(scores)
    b = boxes.astype(np.float32)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    keep = []
    alive = np.ones(len(order), bool)
    for pos, i in enumerate(order):
        if not alive[pos]:
            continue
        keep.append(i)
        rest = order[pos + 1:]
        xx1 = np.maximum(b[i, 0], b[rest, 0])
        yy1 = np.maximum(b[i, 1], b[rest, 1])
        xx2 = np.minimum(b[i, 2], b[rest, 2])
        yy2 = np.minimum(b[i, 3], b[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        iou = inter / (area[i] + area[rest] - inter)
        alive[pos + 1:] &= ~(iou > iou_thr)
    return np.asarray(keep, np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_thr: float) -> np.ndarray:
    """Class-wise NMS (torchvision.ops.batched_nms): kept indices by decreasing score."""
    kept = [np.flatnonzero(labels == c)[nms(boxes[labels == c], scores[labels == c], iou_thr)]
            for c in np.unique(labels)]
    if not kept:
        return np.zeros(0, np.int64)
    keep = np.concatenate(kept)
    return keep[_order_desc(scores[keep])]


def matrix_nms(masks: np.ndarray, labels: np.ndarray, scores: np.ndarray, area: np.ndarray, *, nms_pre: int,
               max_num: int, kernel: str, sigma: float, filter_thr: float):
    """Matrix NMS (``models/solov2/matrix_nms.py``): (decayed scores desc, their labels, input indices)."""
    empty = (np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64))
    if len(scores) == 0:
        return empty
    order = _order_desc(scores)
    if 0 < nms_pre < len(order):
        order = order[:nms_pre]
    s = scores[order]
    flat = masks[order].reshape(len(order), -1).astype(np.float32)
    a = area[order].astype(np.float32)
    lab = labels[order]
    inter = flat @ flat.T
    union = a[:, None] + a[None, :] - inter
    same = np.triu(lab[:, None] == lab[None, :], 1)
    iou = np.triu(inter / union, 1) * same
    comp = iou.max(0)[:, None]
    if kernel == "gaussian":
        decay = (np.exp(-sigma * iou ** 2) / np.exp(-sigma * comp ** 2)).min(0)
    elif kernel == "linear":
        decay = ((1 - iou) / (1 - comp)).min(0)
    else:
        raise ValueError(f"unknown Matrix NMS kernel {kernel!r}; valid: gaussian, linear")
    s = (s * decay).astype(np.float32)
    if filter_thr > 0:
        keep = s >= filter_thr
        if not keep.any():
            return empty
        order, s, lab = order[keep], s[keep], lab[keep]
    resort = _order_desc(s)
    order, s, lab = order[resort], s[resort], lab[resort]
    if 0 < max_num < len(order):
        order, s, lab = order[:max_num], s[:max_num], lab[:max_num]
    return s, lab.astype(np.int64), order


def _empty(h: int, w: int, dtype=bool) -> dict:
    return {"boxes": np.zeros((0, 4), np.float32), "scores": np.zeros(0, np.float32),
            "labels": np.zeros(0, np.int64), "masks": np.zeros((0, h, w), dtype)}


def rtmdet_priors(input_hw: tuple[int, int], strides=RTMDET_STRIDES) -> np.ndarray:
    """[N, 3] (x, y, stride) of every level's points (x = col * stride), row-major, levels concatenated."""
    out = []
    h, w = input_hw
    for s in strides:
        hl, wl = -(-h // s), -(-w // s)
        yy, xx = np.meshgrid(np.arange(hl, dtype=np.float32) * s, np.arange(wl, dtype=np.float32) * s,
                             indexing="ij")
        out.append(np.stack([xx.ravel(), yy.ravel(), np.full(hl * wl, s, np.float32)], 1))
    return np.concatenate(out)


def rtmdet_mask_logits(mask_feat: np.ndarray, kernels: np.ndarray, priors: np.ndarray,
                       feat_stride: int = 8) -> np.ndarray:
    """Logits [n, h, w] of the dynamic 1x1 convs (169 parameters: weights of the 3 layers, then biases) on
    the prototypes [8, h, w] plus the relative coordinates (prior - pixel) / (8 * stride)."""
    n = len(kernels)
    _, h, w = mask_feat.shape
    splits = np.cumsum([80, 64, 8, 8, 8])
    w0, w1, w2, b0, b1, b2 = np.split(kernels.astype(np.float32), splits, axis=1)
    w0 = w0.reshape(n, 8, 10)
    w1 = w1.reshape(n, 8, 8)
    w2 = w2.reshape(n, 1, 8)
    xs = np.arange(w, dtype=np.float32) * feat_stride
    ys = np.arange(h, dtype=np.float32) * feat_stride
    scale = (priors[:, 2] * 8).reshape(n, 1, 1)
    rel_x = (priors[:, 0].reshape(n, 1, 1) - xs.reshape(1, 1, w)) / scale
    rel_y = (priors[:, 1].reshape(n, 1, 1) - ys.reshape(1, h, 1)) / scale
    x = (np.einsum("nop,phw->nohw", w0[:, :, 2:], mask_feat.astype(np.float32))
         + w0[:, :, 0, None, None] * rel_x[:, None] + w0[:, :, 1, None, None] * rel_y[:, None]
         + b0[:, :, None, None])
    x = np.maximum(x, 0).reshape(n, 8, h * w)
    x = np.maximum(np.matmul(w1, x) + b1[:, :, None], 0)
    x = np.matmul(w2, x) + b2[:, :, None]
    return x.reshape(n, h, w).astype(np.float32)


def rtmdet_postprocess(scores: np.ndarray, dists: np.ndarray, kernels: np.ndarray, mask_feat: np.ndarray,
                       input_hw: tuple[int, int], params: dict, *, conf: float, max_det: int) -> dict:
    """One image: sigmoid scores [N, C], ltrb distances [N, 4], dynamic kernels [N, 169] over all levels'
    points and prototypes [8, H/8, W/8] -> detections (bool masks [K, H, W])."""
    h, w = input_hw
    nms_pre, iou_thr, mask_thr = int(params["nms_pre"]), float(params["iou_thr"]), float(params["mask_thr"])
    priors = rtmdet_priors(input_hw, tuple(params.get("strides", RTMDET_STRIDES)))
    scores, dists = scores.astype(np.float32), dists.astype(np.float32)
    sel_rows, sel_labels, sel_scores = [], [], []
    for s in np.unique(priors[:, 2]):
        rows = np.flatnonzero(priors[:, 2] == s)
        level = scores[rows]
        r, c = np.nonzero(level > conf)
        vals = level[r, c]
        order = _order_desc(vals)[:nms_pre]
        sel_rows.append(rows[r[order]])
        sel_labels.append(c[order])
        sel_scores.append(vals[order])
    rows, labels, vals = np.concatenate(sel_rows), np.concatenate(sel_labels), np.concatenate(sel_scores)
    p, d = priors[rows], dists[rows]
    boxes = np.stack([np.clip(p[:, 0] - d[:, 0], 0, w), np.clip(p[:, 1] - d[:, 1], 0, h),
                      np.clip(p[:, 0] + d[:, 2], 0, w), np.clip(p[:, 1] + d[:, 3], 0, h)], 1)
    ok = ((boxes[:, 2] - boxes[:, 0]) > 0) & ((boxes[:, 3] - boxes[:, 1]) > 0)
    rows, labels, vals, boxes = rows[ok], labels[ok], vals[ok], boxes[ok]
    keep = batched_nms(boxes, vals, labels, iou_thr)[:max_det]
    if len(keep) == 0:
        return _empty(h, w)
    rows = rows[keep]
    logits = rtmdet_mask_logits(mask_feat, kernels[rows], priors[rows], int(priors[:, 2].min()))
    up = resize_bilinear(logits, logits.shape[1] * 8, logits.shape[2] * 8)
    masks = _fit(sigmoid(up) > mask_thr, h, w)
    return {"boxes": boxes[keep].astype(np.float32), "scores": vals[keep].astype(np.float32),
            "labels": labels[keep].astype(np.int64), "masks": masks}


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """xyxy [K, 4] (x2/y2 one past the last foreground pixel) of bool masks; an empty mask: a zero box."""
    boxes = np.zeros((len(masks), 4), np.float32)
    for k, m in enumerate(masks):
        ys, xs = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        if len(ys):
            boxes[k] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes


def solov2_postprocess(probs: np.ndarray, kernels: np.ndarray, mask_feat: np.ndarray, input_hw: tuple[int, int],
                       params: dict, *, conf: float, max_det: int) -> dict:
    """One image: point-NMSed category probabilities [N, C] and kernels [N, E] of every grid cell (levels
    concatenated), mask features [E, h, w] -> detections (probability masks [K, H, W])."""
    h, w = input_hw
    level_stride = np.concatenate([np.full(g * g, float(s), np.float32)
                                   for g, s in zip(params["num_grids"], params["strides"])])
    cell, labels = np.nonzero(probs > float(params["score_thr"]))
    if len(cell) == 0:
        return _empty(h, w, np.float32)
    scores = probs[cell, labels].astype(np.float32)
    e, fh, fw = mask_feat.shape
    mask_prob = sigmoid(kernels[cell].astype(np.float32) @ mask_feat.reshape(e, -1).astype(np.float32))
    mask_prob = mask_prob.reshape(-1, fh, fw)
    mask_thr = float(params["mask_thr"])
    binary = mask_prob > mask_thr
    area = binary.sum((1, 2)).astype(np.float32)
    keep = area > level_stride[cell]
    if not keep.any():
        return _empty(h, w, np.float32)
    mask_prob, binary, area, scores, labels = mask_prob[keep], binary[keep], area[keep], scores[keep], labels[keep]
    scores = (scores * ((mask_prob * binary).sum((1, 2)) / area)).astype(np.float32)
    scores, labels, order = matrix_nms(binary, labels, scores, area, nms_pre=int(params["nms_pre"]),
                                       max_num=max_det, kernel=params["kernel"], sigma=float(params["sigma"]),
                                       filter_thr=max(float(params["filter_thr"]), conf))
    if len(order) == 0:
        return _empty(h, w, np.float32)
    stride = int(params["mask_stride"])
    masks = resize_bilinear(mask_prob[order], fh * stride, fw * stride)[:, :h, :w]
    return {"boxes": masks_to_boxes(masks > mask_thr), "scores": scores, "labels": labels, "masks": masks}


def maskrcnn_postprocess(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, masks: np.ndarray,
                         input_hw: tuple[int, int], params: dict, *, conf: float, max_det: int) -> dict:
    """The graph's torchvision detections (score-sorted, labels 1-based, masks [K, 1, H, W] probabilities)
    kept above ``conf``, at most ``max_det``, labels 0-based."""
    keep = np.flatnonzero(scores.astype(np.float32) > conf)[:max_det]
    return {"boxes": boxes[keep].astype(np.float32).reshape(-1, 4), "scores": scores[keep].astype(np.float32),
            "labels": labels[keep].astype(np.int64) - 1, "masks": masks[keep, 0].astype(np.float32)}


def _paste_weights(lo: np.ndarray, hi: np.ndarray, start: int, stop: int, m: int) -> np.ndarray:
    """[stop-start, m] weights that sample an m-cell mask spanning [lo, hi] at pixel centres start..stop-1:
    ``grid_sample`` (bilinear, align_corners=False, zero padding) of the normalized coordinate
    ``(p + 0.5 - lo) / (hi - lo) * 2 - 1``, in float32 as Detectron2 computes it."""
    g = (np.arange(start, stop, dtype=np.float32) + np.float32(0.5) - lo) / (hi - lo) * np.float32(2) - np.float32(1)
    u = ((g + np.float32(1)) * np.float32(m) - np.float32(1)) / np.float32(2)
    return _linear_weights(u, m, zero_pad=True, dtype=np.float32)


def paste_masks(mask_probs: np.ndarray, boxes: np.ndarray, h: int, w: int, mask_thr: float = 0.5) -> np.ndarray:
    """Detectron2's ``paste_masks_in_image`` on the CPU, in numpy: each [M, M] probability map resampled
    into its box (``_paste_weights`` per axis) over the box's pixels widened by one and clipped to the
    image, then ``>= mask_thr``. Returns float32 0/1 masks [K, h, w]."""
    out = np.zeros((len(boxes), h, w), np.float32)
    m = mask_probs.shape[-1]
    for k, (prob, box) in enumerate(zip(mask_probs.astype(np.float32), boxes.astype(np.float32))):
        x0, y0, x1, y1 = box
        if not (x1 > x0 and y1 > y0):  # an empty box: Detectron2's division by zero samples nothing
            continue
        xs, ys = max(int(np.floor(x0)) - 1, 0), max(int(np.floor(y0)) - 1, 0)
        xe, ye = min(int(np.ceil(x1)) + 1, w), min(int(np.ceil(y1)) + 1, h)
        if xe <= xs or ye <= ys:
            continue
        crop = _paste_weights(y0, y1, ys, ye, m) @ prob @ _paste_weights(x0, x1, xs, xe, m).T
        out[k, ys:ye, xs:xe] = crop >= mask_thr
    return out


def detectron2_postprocess(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, mask_probs: np.ndarray,
                           input_hw: tuple[int, int], params: dict, *, conf: float, max_det: int) -> dict:
    """The graph's Detectron2 detections (score-sorted, labels 0-based, 28x28 mask probabilities) kept above
    ``conf``, at most ``max_det``, their masks pasted into the input image as Detectron2 pastes them."""
    keep = np.flatnonzero(scores.astype(np.float32) > conf)[:max_det]
    boxes = boxes[keep].astype(np.float32).reshape(-1, 4)
    masks = paste_masks(mask_probs[keep], boxes, *input_hw, float(params.get("mask_thr", 0.5)))
    return {"boxes": boxes, "scores": scores[keep].astype(np.float32), "labels": labels[keep].astype(np.int64),
            "masks": masks}


POSTPROCESS = {"rtmdet-ins": rtmdet_postprocess, "solov2": solov2_postprocess, "maskrcnn": maskrcnn_postprocess,
               "detectron2-maskrcnn": detectron2_postprocess}
IN_GRAPH_NMS = ("maskrcnn", "detectron2-maskrcnn")  # batch 1; score threshold and max_det fixed at export

__all__ = ["IN_GRAPH_NMS", "POSTPROCESS", "batched_nms", "detectron2_postprocess", "masks_to_boxes", "matrix_nms",
           "maskrcnn_postprocess", "nms", "paste_masks", "resize_bilinear", "rtmdet_mask_logits",
           "rtmdet_postprocess", "solov2_postprocess"]
