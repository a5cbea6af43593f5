"""SOLOv2: sizes, the model contract, Matrix NMS, targets, losses, weights. No MMDetection needed."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest
import torch

from instseg.errors import WeightsError
from instseg.models.registry import get_architecture
from instseg.models.solov2 import build_solov2
from instseg.models.solov2.config import SOLOV2_SIZES, get_solov2_config
from instseg.models.solov2.losses import assign_image, dice_loss, mask_centre
from instseg.models.solov2.matrix_nms import matrix_nms
from instseg.models.solov2.postprocess import masks_to_boxes, point_nms
from instseg.models.solov2.weights import load_solov2_state, read_state_dict

FIXTURE = Path(__file__).parent / "fixtures" / "solov2_keys.json.gz"


def n_params(model: torch.nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6


def _size_param(size: str):
    """ResNet-50/101 sizes take seconds to build on 2 shared cores: marked slow."""
    return pytest.param(size, marks=pytest.mark.slow) if SOLOV2_SIZES[size].depth >= 50 else size


@pytest.fixture(scope="module")
def nano3() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_solov2("nano", 3)


@pytest.mark.parametrize("size", [_size_param(s) for s in SOLOV2_SIZES])
def test_size_params_and_mmdetection_keys(size):
    """Registry params_m equal the built model's; keys and shapes equal MMDetection 3.3.0's state_dict
    (tests/models/fixtures/solov2_keys.json.gz, recorded by scripts/record_mmdet_solov2_keys.py)."""
    spec = get_architecture("solov2")
    assert spec.status == "available" and spec.builder == "instseg.models.solov2:build_solov2"
    assert spec.mask_stride == 4
    model = build_solov2(size, 80)
    assert n_params(model) == pytest.approx(spec.sizes[size].params_m, abs=0.01)
    recorded = json.loads(gzip.decompress(FIXTURE.read_bytes()))["sizes"][size]
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(recorded) ^ set(ours)) == []
    assert {k: v for k, v in ours.items() if recorded[k] != v} == {}


@pytest.mark.parametrize(("size", "depth", "fpn", "mask_out"), [
    ("nano", 18, 128, 64), ("small", 34, 192, 96), ("medium", 50, 256, 128), ("large", 101, 384, 256),
])
def test_instseg_sizes_as_the_issue_defines(size, depth, fpn, mask_out):
    cfg = get_solov2_config(size)
    assert (cfg.depth, cfg.fpn_channels, cfg.mask_out_channels) == (depth, fpn, mask_out)


def test_unknown_size_lists_valid_names():
    with pytest.raises(KeyError, match="nano, small, medium, large"):
        build_solov2("huge", 3)


@pytest.mark.parametrize(("h", "w"), [(64, 96), (70, 100)])
def test_contract_shapes(nano3, h, w):
    model = nano3
    images = torch.randint(0, 256, (2, 3, h, w), dtype=torch.uint8)
    kernels, logits, feats = model(images)
    hp, wp = math.ceil(h / 32) * 32, math.ceil(w / 32) * 32
    assert [tuple(k.shape) for k in kernels] == [(2, 64, g, g) for g in (40, 36, 24, 16, 12)]
    assert [tuple(c.shape) for c in logits] == [(2, 3, g, g) for g in (40, 36, 24, 16, 12)]
    assert tuple(feats.shape) == (2, 64, hp // 4, wp // 4)
    model.train()
    masks = torch.zeros(1, math.ceil(h / 4), math.ceil(w / 4), dtype=torch.uint8)
    masks[0, 2:10, 3:15] = 1  # input x 12..60, y 8..40 (stride 4)
    targets = [{"labels": torch.tensor([1]), "boxes": torch.tensor([[12.0, 8, 60, 40]]), "masks": masks}] * 2
    losses = model.forward_train(images, targets)
    assert set(losses) == {"loss_mask", "loss_cls"}
    assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    model.eval()
    bias = model.mask_head.conv_cls.bias.detach().clone()
    with torch.no_grad():  # a strong classifier bias makes random weights detect something
        model.mask_head.conv_cls.bias.fill_(1.0)
    preds = model.predict(images, score_thr=0.0, max_det=7)
    with torch.no_grad():
        model.mask_head.conv_cls.bias.copy_(bias)
    assert len(preds) == 2
    for p in preds:
        k = len(p["scores"])
        assert 0 < k <= 7
        assert tuple(p["masks"].shape) == (k, h, w) and p["masks"].dtype == torch.float32
        assert tuple(p["boxes"].shape) == (k, 4) and p["labels"].dtype == torch.int64
        assert bool((p["scores"][:-1] >= p["scores"][1:]).all())
        assert bool(((p["labels"] >= 0) & (p["labels"] < 3)).all())


def test_empty_targets_give_zero_mask_loss(nano3):
    model = nano3
    images = torch.zeros(1, 3, 64, 64, dtype=torch.uint8)
    empty = [{"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4),
              "masks": torch.zeros(0, 16, 16, dtype=torch.uint8)}]
    losses = model.forward_train(images, empty)
    assert losses["loss_mask"].item() == 0.0
    assert losses["loss_cls"].item() > 0


def _row_masks(spans: list[tuple[int, int]], width: int = 8) -> torch.Tensor:
    m = torch.zeros(len(spans), 1, width, dtype=torch.bool)
    for i, (a, b) in enumerate(spans):
        m[i, 0, a:b] = True
    return m


# A = cols 0..3, B = cols 2..5, C = cols 4..7: IoU(A,B) = IoU(B,C) = 1/3, IoU(A,C) = 0
G = math.exp(-2.0 / 9)  # gaussian f(1/3) with sigma 2


@pytest.mark.parametrize(("kernel", "labels", "expected"), [
    ("gaussian", [0, 0, 1], [0.9, 0.8 * G, 0.7]),  # C has another class: untouched
    ("linear", [0, 0, 1], [0.9, 0.8 * 2 / 3, 0.7]),
    ("gaussian", [0, 0, 0], [0.9, 0.8 * G, 0.7]),  # C is compensated: B, its suppressor, is suppressed too
    ("linear", [0, 0, 0], [0.9, 0.8 * 2 / 3, 0.7]),
    ("gaussian", [0, 1, 2], [0.9, 0.8, 0.7]),
])
def test_matrix_nms_hand_cases(kernel, labels, expected):
    masks = _row_masks([(0, 4), (2, 6), (4, 8)])
    scores, out_labels, keep = matrix_nms(masks, torch.tensor(labels), torch.tensor([0.8, 0.9, 0.7])[[1, 0, 2]],
                                          kernel=kernel, sigma=2.0)
    want = sorted(zip(expected, [0, 1, 2]), reverse=True)
    assert scores.tolist() == pytest.approx([s for s, _ in want], abs=1e-6)
    assert keep.tolist() == [i for _, i in want]
    assert out_labels.tolist() == [labels[i] for _, i in want]


def test_matrix_nms_contained_mask_and_filters():
    masks = _row_masks([(0, 8), (0, 4), (6, 8)])  # IoU(0,1) = 0.5, IoU(0,2) = 0.25
    labels = torch.zeros(3, dtype=torch.int64)
    scores = torch.tensor([0.9, 0.5, 0.3])
    s, _, keep = matrix_nms(masks, labels, scores, kernel="linear")
    assert s.tolist() == pytest.approx([0.9, 0.25, 0.225])
    assert keep.tolist() == [0, 1, 2]
    s, _, keep = matrix_nms(masks, labels, scores, kernel="linear", filter_thr=0.24)
    assert keep.tolist() == [0, 1]
    s, _, keep = matrix_nms(masks, labels, scores, kernel="linear", max_num=1)
    assert keep.tolist() == [0]
    s, _, keep = matrix_nms(masks, labels, scores, kernel="linear", nms_pre=2)
    assert keep.tolist() == [0, 1] and s.tolist() == pytest.approx([0.9, 0.25])
    assert len(matrix_nms(masks[:0], labels[:0], scores[:0])[2]) == 0
    with pytest.raises(ValueError, match="gaussian, linear"):
        matrix_nms(masks, labels, scores, kernel="box")


def test_point_nms_keeps_local_maxima_only():
    s = torch.tensor([[[[0.1, 0.9, 0.2], [0.3, 0.4, 0.8], [0.7, 0.1, 0.1]]]])
    out = point_nms(s)[0, 0]
    # kept when >= its top, left and top-left neighbours (MMDetection's 2x2 max-pool point NMS)
    assert out.flatten().tolist() == pytest.approx([0.1, 0.9, 0.0, 0.3, 0.0, 0.0, 0.7, 0.0, 0.0])


def test_masks_to_boxes():
    m = torch.zeros(2, 10, 12, dtype=torch.bool)
    m[0, 2:5, 3:9] = True
    assert masks_to_boxes(m).tolist() == [[3, 2, 9, 5], [0, 0, 0, 0]]


@pytest.mark.parametrize(("rows", "cols", "stride", "centre"), [
    ((0, 1), (0, 1), 4, (1.5, 1.5)),  # one stride-4 pixel covers input pixels 0..3: centre 1.5
    ((2, 4), (1, 2), 4, (11.5, 5.5)),
    ((2, 4), (1, 2), 1, (2.5, 1.0)),
])
def test_mask_centre_in_input_pixels(rows, cols, stride, centre):
    m = torch.zeros(8, 8, dtype=torch.uint8)
    m[rows[0] : rows[1], cols[0] : cols[1]] = 1
    cy, cx = mask_centre(m, stride)
    assert (cy.item(), cx.item()) == pytest.approx(centre)


def test_assignment_hand_case():
    """A 48x48 box (x 16..64, y 24..72) on a 128x160 input: scale 48 lies in levels 0 (1-96) and 1 (48-192).
    Mask centre (input pixels) y = 47.5, x = 39.5; centre region half size 0.2 * 24 = 4.8 px.
    Level 0 (grid 40): centre cell row trunc(47.5/128*40) = 14, col trunc(39.5/160*40) = 9; region rows
    13..16, cols 8..11, clipped to centre +- 1 -> rows 13..15, cols 8..10.
    Level 1 (grid 36): centre (13, 8); region rows 12..14, cols 7..9 (already within +- 1)."""
    cfg = get_solov2_config("nano")
    masks = torch.zeros(1, 32, 40, dtype=torch.uint8)
    masks[0, 6:18, 4:16] = 1
    lv = assign_image(torch.tensor([2]), torch.tensor([[16.0, 24, 64, 72]]), masks, (32, 40), cfg, num_classes=3)
    assert [t.num_unique_pos for t in lv] == [9, 9, 0, 0, 0]
    for level, (r0, r1, c0, c1) in [(0, (13, 15, 8, 10)), (1, (12, 14, 7, 9))]:
        rows, cols = (lv[level].labels == 2).nonzero().unbind(1)
        assert (rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()) == (r0, r1, c0, c1)
        assert (lv[level].labels != 3).sum().item() == 9 and lv[level].pos_gt == [0] * 9
    g = cfg.num_grids[0]
    assert lv[0].pos_index == [r * g + c for r in (13, 14, 15) for c in (8, 9, 10)]


def test_dice_loss_values():
    t = torch.tensor([[[1.0, 1, 0, 0]]])
    big = torch.tensor([[[20.0, 20, -20, -20]]])
    assert dice_loss(big, t).item() == pytest.approx(0.0005, abs=2e-4)  # eps keeps it just above 0
    assert dice_loss(-big, t).item() == pytest.approx(1.0, abs=1e-6)
    half = torch.zeros(1, 1, 4)  # p = 0.5 everywhere: 1 - 2*1 / (1 + 2 + 2e-3)
    assert dice_loss(half, t).item() == pytest.approx(1 - 2 / 3.002, abs=1e-6)


def test_overfits_one_image():
    """20 AdamW steps on one 64x96 image with two instances: the total loss falls below a quarter
    (measured: 2.76 -> 0.18 with seed 0)."""
    torch.manual_seed(0)
    model = build_solov2("nano", 2)
    model.train()
    images = torch.randint(0, 256, (1, 3, 64, 96), dtype=torch.uint8)
    masks = torch.zeros(2, 16, 24, dtype=torch.uint8)
    masks[0, 2:10, 2:8] = 1
    masks[1, 6:15, 10:22] = 1
    targets = [{"labels": torch.tensor([0, 1]), "boxes": torch.tensor([[8.0, 8, 32, 40], [40, 24, 88, 60]]),
                "masks": masks}]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-4)
    history = []
    for _ in range(20):
        losses = model.forward_train(images, targets)
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append(total.item())
    assert all(math.isfinite(v) for v in history)
    assert history[-1] < 0.25 * history[0]


def test_checkpoint_round_trip_with_class_change(tmp_path):
    torch.manual_seed(0)
    src = build_solov2("nano", 3)
    path = tmp_path / "mmdet_style.pth"
    torch.save({"meta": {"epoch": 12}, "state_dict": src.state_dict()}, path)
    same = build_solov2("nano", 3)
    assert load_solov2_state(same, read_state_dict(path), str(path)) == []
    assert all(torch.equal(v, src.state_dict()[k]) for k, v in same.state_dict().items())
    other = build_solov2("nano", 5)
    reinit = load_solov2_state(other, read_state_dict(path), str(path))
    assert reinit == ["mask_head.conv_cls.weight", "mask_head.conv_cls.bias"]
    sd = other.state_dict()
    assert all(torch.equal(v, sd[k]) for k, v in src.state_dict().items() if "conv_cls" not in k)
    assert sd["mask_head.conv_cls.bias"].tolist() == pytest.approx([-math.log(99)] * 5)
    with pytest.raises(WeightsError, match="shapes differ"):
        load_solov2_state(build_solov2("light-r18", 3), read_state_dict(path), str(path))
    with pytest.raises(WeightsError, match="96 missing keys"):  # ResNet34 has more blocks than ResNet18
        load_solov2_state(build_solov2("small", 3), read_state_dict(path), str(path))
    with pytest.raises(WeightsError, match="no such weights file"):
        read_state_dict(tmp_path / "absent.pth")


def test_pretrained_without_published_weights_is_a_clear_error():
    with pytest.raises(WeightsError, match="no COCO SOLOv2 weights.*small.*medium"):
        build_solov2("small", 3, pretrained=True)


def test_offline_download_names_the_file_and_folder(tmp_path, monkeypatch):
    def offline(*_a, **_k):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError, match=r"solov2_light_r18_fpn_3x_coco_20220511_083717-75fa355b\.pth") as e:
        build_solov2("light-r18", 3, pretrained=True)
    assert str(tmp_path / "checkpoints") in str(e.value)
    with pytest.raises(WeightsError, match=r"resnet18-f37072fd\.pth"):
        build_solov2("nano", 3, pretrained_backbone=True)


def test_pretrained_backbone_from_file_freezes_like_mmdetection(tmp_path):
    import torchvision

    tv = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(tv.state_dict(), path)
    model = build_solov2("nano", 3, pretrained_backbone=path)
    assert torch.equal(model.backbone.layer4[1].conv2.weight, tv.layer4[1].conv2.weight)
    assert not model.backbone.conv1.weight.requires_grad and not model.backbone.layer1[0].conv1.weight.requires_grad
    assert model.backbone.layer2[0].conv1.weight.requires_grad
    model.train()
    assert not model.backbone.bn1.training and not model.backbone.layer3[0].bn1.training
    assert model.mask_head.training
