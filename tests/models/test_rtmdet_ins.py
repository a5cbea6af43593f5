"""Native RTMDet-Ins: sizes and parameter counts, MMDetection key layout, the model contract,
assigner, losses, mask decoding, checkpoint loading. No MMDetection needed
(tests/models/test_rtmdet_ins_mmdet.py compares with it)."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from instseg.errors import WeightsError
from instseg.models.rtmdet_ins import build_rtmdet_ins
from instseg.models.rtmdet_ins.assigner import assign, box_iou, mask_centers
from instseg.models.rtmdet_ins.head import NUM_GEN_PARAMS, distance_to_boxes, dynamic_mask_logits, grid_priors
from instseg.models.rtmdet_ins.losses import dice_loss, giou_loss, quality_focal_loss
from instseg.models.rtmdet_ins.weights import load_mmdet_checkpoint

FIXTURE = Path(__file__).parent / "fixtures" / "rtmdet_ins_keys.json.gz"
SIZES = ["tiny", "s", "m", "l", "x"]


def _fixture() -> dict:
    return json.loads(gzip.decompress(FIXTURE.read_bytes()))


def _meta_model(size: str, num_classes: int = 80):
    with torch.device("meta"):
        return build_rtmdet_ins(size, num_classes)


@pytest.mark.parametrize(
    "size,params_m", [("tiny", 5.6), ("s", 10.2), ("m", 27.6), ("l", 57.4), ("x", 102.7)]
)
def test_parameter_counts_are_mmdetections(size, params_m):
    from instseg.models.registry import get_size

    n = sum(p.numel() for p in _meta_model(size).parameters())
    assert round(n / 1e6, 1) == params_m
    assert n == _fixture()["sizes"][size]["params"]
    assert get_size("rtmdet-ins", size).params_m == round(n / 1e6, 2)


@pytest.mark.parametrize("size", SIZES)
def test_state_dict_keys_and_shapes_equal_mmdetections(size):
    own = {k: list(v.shape) for k, v in _meta_model(size).state_dict().items()}
    ref = _fixture()["sizes"][size]["keys"]
    assert sorted(set(ref) - set(own)) == [] and sorted(set(own) - set(ref)) == []
    assert own == ref


@pytest.fixture(scope="module")
def tiny3():
    torch.manual_seed(0)
    return build_rtmdet_ins("tiny", 3)


def _targets(b: int, hw=(128, 128)):
    h, w = hw
    out = []
    for i in range(b):
        masks = torch.zeros(2, h // 4, w // 4, dtype=torch.uint8)
        masks[0, 4:16, 6:20] = 1
        masks[1, 18 + i : 28, 10:30] = 1
        boxes = torch.tensor([[24.0, 16.0, 80.0, 64.0], [40.0, 72.0 + 4 * i, 120.0, 112.0]])
        out.append({"labels": torch.tensor([0, 2]), "boxes": boxes, "masks": masks})
    return out


def test_forward_train_and_predict_follow_the_model_contract(tiny3):
    images = torch.randint(0, 256, (2, 3, 128, 128), dtype=torch.uint8)
    tiny3.train()
    losses = tiny3.forward_train(images, _targets(2))
    assert set(losses) == {"loss_cls", "loss_bbox", "loss_mask"}
    assert all(v.ndim == 0 and torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    # the mask loss reaches the dynamic kernels (of the levels that got positives)
    assert sum(conv.weight.grad.abs().sum() for conv in tiny3.bbox_head.rtm_kernel) > 0
    tiny3.zero_grad()
    tiny3.eval()
    preds = tiny3.predict(images, score_thr=0.0, max_det=7)
    assert len(preds) == 2
    for p in preds:
        k = len(p["scores"])
        assert k == 7
        assert (
            p["boxes"].shape == (k, 4)
            and p["labels"].dtype == torch.int64
            and p["masks"].shape == (k, 128, 128)
        )
        assert p["masks"].dtype == torch.bool
        assert bool((p["labels"] >= 0).all() and (p["labels"] < 3).all())
        assert bool((p["scores"][:-1] >= p["scores"][1:]).all())
        assert bool((p["boxes"][:, :2] >= 0).all() and (p["boxes"][:, 2:] <= 128).all())


def test_images_without_instances_train(tiny3):
    tiny3.train()
    empty = {
        "labels": torch.zeros(0, dtype=torch.long),
        "boxes": torch.zeros(0, 4),
        "masks": torch.zeros(0, 32, 32, dtype=torch.uint8),
    }
    losses = tiny3.forward_train(torch.zeros(1, 3, 128, 128, dtype=torch.uint8), [empty])
    assert (
        losses["loss_bbox"].item() == 0 and losses["loss_mask"].item() == 0 and losses["loss_cls"].item() > 0
    )


@pytest.mark.slow
def test_overfitting_one_image_lowers_the_loss():
    torch.manual_seed(0)
    model = build_rtmdet_ins("tiny", 3)
    model.train()
    images = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8)
    masks = torch.zeros(2, 16, 16, dtype=torch.uint8)
    masks[0, 2:8, 3:10] = 1
    masks[1, 9:15, 5:15] = 1
    t = {
        "labels": torch.tensor([0, 2]),
        "boxes": torch.tensor([[12.0, 8.0, 40.0, 32.0], [20.0, 36.0, 60.0, 60.0]]),
        "masks": masks,
    }
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    totals = []
    for _ in range(20):
        loss = sum(model.forward_train(images, [t]).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        totals.append(loss.item())
    assert all(math.isfinite(v) for v in totals)
    print("overfit losses:", [round(v, 3) for v in totals])
    assert sum(totals[-3:]) / 3 < 0.7 * sum(totals[:3]) / 3


# ---------------- assigner ----------------


def _priors(points, stride=8.0):
    return torch.tensor([[x, y, stride, stride] for x, y in points], dtype=torch.float32)


@pytest.mark.parametrize(
    "points,expected_gt",
    [
        ([(16, 16), (200, 200)], [0, -1]),  # the prior outside every box stays background
        ([(16, 16), (24, 24), (100, 100)], [0, 0, -1]),
        ([(8, 8), (60, 60)], [0, 1]),  # two gts, each takes the prior inside it
    ],
)
def test_assigner_candidates_are_inside_boxes(points, expected_gt):
    priors = _priors(points)
    gt = torch.tensor([[0.0, 0.0, 32.0, 32.0], [50.0, 50.0, 70.0, 70.0]])[: max(expected_gt) + 1]
    pred_boxes = gt[[max(g, 0) for g in expected_gt]].clone()  # perfect boxes: IoU 1 for each own gt
    logits = torch.zeros(len(points), 2)
    a = assign(priors, logits, pred_boxes, gt, torch.tensor([1, 0])[: len(gt)])
    assert a.gt_inds.tolist() == expected_gt
    assert a.labels.tolist() == [[1, 0][g] if g >= 0 else -1 for g in expected_gt]
    assert torch.allclose(a.ious[a.pos], torch.ones(int(a.pos.sum())))


def test_assigner_dynamic_k_takes_the_cheapest_priors():
    # 4 priors in one gt box; the sum of their IoUs is 0.9 + 0.8 + 0.1 + 0.05 -> k = int(1.85) = 1
    priors = _priors([(10, 10), (12, 12), (14, 14), (16, 16)], stride=8)
    gt = torch.tensor([[0.0, 0.0, 40.0, 40.0]])
    ious_wanted = [0.1, 0.9, 0.8, 0.05]
    pred = torch.stack([torch.tensor([0.0, 0.0, 40.0, 40.0 * v]) for v in ious_wanted])
    a = assign(priors, torch.zeros(4, 1), pred, gt, torch.tensor([0]))
    assert a.gt_inds.tolist() == [-1, 0, -1, -1]
    assert a.ious[1].item() == pytest.approx(0.9, abs=1e-6)


def test_assigner_prior_claimed_twice_keeps_the_cheapest_gt():
    priors = _priors([(20, 20)])
    gt = torch.tensor([[0.0, 0.0, 40.0, 40.0], [10.0, 10.0, 30.0, 30.0]])
    pred = torch.tensor([[10.0, 10.0, 30.0, 30.0]])  # IoU 0.25 with gt 0, 1.0 with gt 1
    a = assign(priors, torch.zeros(1, 2), pred, gt, torch.tensor([0, 1]))
    assert a.gt_inds.tolist() == [1] and a.labels.tolist() == [1]


def test_assigner_without_gt_is_all_background():
    a = assign(
        _priors([(4, 4)]),
        torch.zeros(1, 2),
        torch.tensor([[0.0, 0, 8, 8]]),
        torch.zeros(0, 4),
        torch.zeros(0, dtype=torch.long),
    )
    assert a.gt_inds.tolist() == [-1] and a.labels.tolist() == [-1] and a.ious.tolist() == [0.0]


@pytest.mark.parametrize("stride,expected", [(1, (2.0, 1.0)), (4, (9.5, 5.5))])
def test_mask_centers_in_input_pixels(stride, expected):
    m = torch.zeros(1, 4, 6, dtype=torch.uint8)
    m[0, 1, 1:4] = 1  # columns 1..3 of row 1
    assert mask_centers(m, stride)[0].tolist() == pytest.approx(list(expected))


@pytest.mark.parametrize(
    "a,b,iou",
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [5, 0, 15, 10], 1 / 3),
        ([0, 0, 10, 10], [20, 20, 30, 30], 0.0),
    ],
)
def test_box_iou(a, b, iou):
    assert box_iou(
        torch.tensor([a], dtype=torch.float32), torch.tensor([b], dtype=torch.float32)
    ).item() == pytest.approx(iou)


# ---------------- losses ----------------


@pytest.mark.parametrize(
    "pred,target,loss",
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 0.0),
        ([0, 0, 10, 10], [5, 0, 15, 10], 1 - (1 / 3 - (150 - 150) / 150)),
        ([0, 0, 10, 10], [20, 0, 30, 10], 1 - (0 - (300 - 200) / 300)),
    ],
)
def test_giou_loss(pred, target, loss):
    assert giou_loss(
        torch.tensor([pred], dtype=torch.float32), torch.tensor([target], dtype=torch.float32)
    ).item() == pytest.approx(loss, abs=1e-6)


def test_dice_loss_is_mmdetections_squared_form():
    logits = torch.tensor([[[0.0, 100.0], [-100.0, 0.0]]])
    target = torch.tensor([[[1, 1], [0, 0]]])
    p = torch.tensor([0.5, 1.0, 0.0, 0.5])
    t = torch.tensor([1.0, 1.0, 0.0, 0.0])
    expected = 1 - 2 * (p * t).sum() / ((p * p).sum() + 5e-6 + (t * t).sum() + 5e-6)
    assert dice_loss(logits, target).item() == pytest.approx(expected.item(), abs=1e-6)


def test_quality_focal_loss_by_hand():
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    labels = torch.tensor([1, 2])  # row 0: positive of class 1 with IoU 0.6; row 1: background (label = C)
    scores = torch.tensor([0.6, 0.0])
    s = torch.sigmoid(logits)
    bg = lambda x: (
        F.binary_cross_entropy_with_logits(x, torch.zeros_like(x), reduction="none") * torch.sigmoid(x) ** 2
    )
    row0 = (
        bg(logits[0, 0])
        + F.binary_cross_entropy_with_logits(logits[0, 1], torch.tensor(0.6)) * (0.6 - s[0, 1]) ** 2
    )
    row1 = bg(logits[1]).sum()
    assert quality_focal_loss(logits, labels, scores).tolist() == pytest.approx(
        [row0.item(), row1.item()], abs=1e-6
    )


# ---------------- priors and mask decoding ----------------


def test_grid_priors_are_row_major_with_offset_zero():
    p = grid_priors([(2, 3), (1, 2)], (8, 16))
    assert p[:4].tolist() == [[0, 0, 8, 8], [8, 0, 8, 8], [16, 0, 8, 8], [0, 8, 8, 8]]
    assert p[6:].tolist() == [[0, 0, 16, 16], [16, 0, 16, 16]]
    assert distance_to_boxes(p[1], torch.tensor([2.0, 3.0, 4.0, 5.0])).tolist() == [6.0, -3.0, 12.0, 5.0]


def test_dynamic_mask_logits_equal_grouped_conv_reference():
    """The batched-matmul decoding equals a literal grouped 1x1 conv over [dx, dy, prototypes]."""
    torch.manual_seed(0)
    n, h, w = 3, 5, 7
    feat = torch.randn(8, h, w)
    kernels = torch.randn(n, NUM_GEN_PARAMS)
    priors = torch.tensor([[8.0, 16.0, 8, 8], [32.0, 0.0, 16, 16], [0.0, 32.0, 32, 32]])
    ys, xs = torch.meshgrid(torch.arange(h) * 8.0, torch.arange(w) * 8.0, indexing="ij")
    rel = torch.stack(
        [
            (priors[:, 0, None, None] - xs) / (priors[:, 2, None, None] * 8),
            (priors[:, 1, None, None] - ys) / (priors[:, 2, None, None] * 8),
        ],
        1,
    )
    x = torch.cat([rel, feat.expand(n, -1, -1, -1)], 1).reshape(1, -1, h, w)
    parts = torch.split(kernels, [80, 64, 8, 8, 8, 1], dim=1)
    x = F.relu(F.conv2d(x, parts[0].reshape(n * 8, 10, 1, 1), parts[3].reshape(-1), groups=n))
    x = F.relu(F.conv2d(x, parts[1].reshape(n * 8, 8, 1, 1), parts[4].reshape(-1), groups=n))
    x = F.conv2d(x, parts[2].reshape(n, 8, 1, 1), parts[5].reshape(-1), groups=n).reshape(n, h, w)
    assert torch.allclose(dynamic_mask_logits(feat, kernels, priors), x, atol=1e-5)


def test_preprocessing_flips_rgb_to_bgr_before_mmdetections_mean_std(tiny3):
    img = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    img[:, 0] = 200  # red
    x = tiny3.normalize(img)
    assert x[0, :, 0, 0].tolist() == pytest.approx(
        [-103.53 / 57.375, -116.28 / 57.12, (200 - 123.675) / 58.395]
    )


# ---------------- checkpoints ----------------


def _mmdet_file(tmp_path, model, extra=None):
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state.update(extra or {})
    path = tmp_path / "rtmdet-ins_tiny_test.pth"
    torch.save({"meta": {"mmdet_version": "3.3.0", "epoch": 300}, "state_dict": state}, path)
    return path


def test_mmdet_checkpoint_round_trip(tmp_path, tiny3):
    path = _mmdet_file(tmp_path, tiny3, {"ema_backbone_stem_0_conv_weight": torch.zeros(1)})
    other = build_rtmdet_ins("tiny", 3)
    notes = load_mmdet_checkpoint(other, path)
    assert any("ema_" in n for n in notes)
    for k, v in tiny3.state_dict().items():
        assert torch.equal(other.state_dict()[k], v), k


def test_class_count_change_reinitializes_only_rtm_cls(tmp_path, tiny3):
    path = _mmdet_file(tmp_path, tiny3)
    five = build_rtmdet_ins("tiny", 5, pretrained=path, log=lambda s: None)
    src = tiny3.state_dict()
    for k, v in five.state_dict().items():
        if k.startswith("bbox_head.rtm_cls."):
            assert v.shape[0] == 5
        else:
            assert torch.equal(v, src[k]), k
    notes = load_mmdet_checkpoint(build_rtmdet_ins("tiny", 5), path)
    assert (
        "3 classes in the checkpoint, 5 in the model" in notes[0] and "bbox_head.rtm_cls.0.bias" in notes[0]
    )


@pytest.mark.parametrize(
    "make,message",
    [
        (
            lambda p: torch.save({"state_dict": {"backbone.x": torch.zeros(1)}}, p),
            "does not fit RTMDet-Ins size 'tiny'",
        ),
        (lambda p: p.write_bytes(b"not a checkpoint"), "weights_only=True"),
        (lambda p: None, "no such weights file"),
    ],
)
def test_bad_checkpoints_raise_weights_errors(tmp_path, make, message):
    path = tmp_path / "bad.pth"
    make(path)
    with pytest.raises(WeightsError, match=message):
        load_mmdet_checkpoint(build_rtmdet_ins("tiny", 3), path)


def test_wrong_size_checkpoint_names_the_fix(tmp_path):
    path = _mmdet_file(tmp_path, _meta_model("s").to_empty(device="cpu"))
    with pytest.raises(WeightsError, match="pick the --model size"):
        load_mmdet_checkpoint(build_rtmdet_ins("tiny", 80), path)


def test_pretrained_offline_names_the_file_to_place(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def no_network(url, dst, progress=True):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(WeightsError) as e:
        build_rtmdet_ins("tiny", 2, pretrained=True)
    expected = (
        tmp_path / "hub" / "checkpoints" / "rtmdet-ins_tiny_8xb32-300e_coco_20221130_151727-ec670f7e.pth"
    )
    assert str(expected) in str(e.value) and "Offline?" in str(e.value)


def test_pretrained_backbone_loads_backbone_keys_only(tmp_path, tiny3):
    state = {f"backbone.{k}": v.clone() for k, v in tiny3.backbone.state_dict().items()}
    state["head.fc.weight"] = torch.zeros(2, 2)  # an ImageNet classifier, ignored
    path = tmp_path / "cspnext-tiny_imagenet_600e.pth"
    torch.save({"meta": {}, "state_dict": state}, path)
    model = build_rtmdet_ins("tiny", 3, pretrained_backbone=path)
    for k, v in tiny3.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[k], v)


@pytest.mark.parametrize(
    "freeze,frozen,trainable",
    [(0, [], ["stem", "stage1"]), (1, ["stem", "stage1"], ["stage2"]), (4, ["stem", "stage4"], ["neck"])],
)
def test_freeze_freezes_stem_and_first_stages(freeze, frozen, trainable):
    model = build_rtmdet_ins("tiny", 2, freeze=freeze)
    model.train()
    for name in frozen:
        part = getattr(model.backbone, name)
        assert not any(p.requires_grad for p in part.parameters()) and not part.training
    for name in trainable:
        part = getattr(model.backbone, name, None) or getattr(model, name)
        assert all(p.requires_grad for p in part.parameters())


def test_half_precision_head_outputs_give_the_float_losses(tiny3):
    """Under CUDA autocast the head gives fp16; the losses are computed in float32 (640 px box areas overflow
    fp16)."""
    tiny3.train()
    images = torch.randint(0, 256, (1, 3, 128, 128), dtype=torch.uint8)
    with torch.no_grad():
        out = tiny3.forward_heads(images)
    half = tuple([t.half() for t in part] if isinstance(part, list) else part.half() for part in out)
    ref = tiny3.loss(out, _targets(1), (128, 128))
    got = tiny3.loss(half, _targets(1), (128, 128))
    for k in ref:
        assert torch.isfinite(got[k]) and got[k].item() == pytest.approx(ref[k].item(), rel=2e-2, abs=1e-3)
