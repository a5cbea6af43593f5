"""torchvision Mask R-CNN behind the model contract: losses, predictions, sizes, heads, freezing, offline."""

from __future__ import annotations

import pytest
import torch

from instseg.models.maskrcnn import BACKBONE_STAGES, build_maskrcnn
from instseg.errors import WeightsError


def _batch(b: int = 2, h: int = 128, w: int = 128):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 255, (b, 3, h, w), generator=g, dtype=torch.uint8)
    targets = []
    for k in range(b):
        masks = torch.zeros(2, h, w, dtype=torch.uint8)
        masks[0, 10:60, 20:70] = 1
        masks[1, 70:120, 30 + k:90] = 1
        boxes = torch.tensor([[20, 10, 70, 60], [30 + k, 70, 90, 120]], dtype=torch.float32)
        targets.append({"labels": torch.tensor([0, 2]), "boxes": boxes, "masks": masks})
    return images, targets


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_maskrcnn("r50-fpn", 3, imgsz=128)


def test_forward_train_losses_are_finite_and_backprop(model):
    images, targets = _batch()
    model.train()
    losses = model.forward_train(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"}
    total = sum(losses.values())
    assert torch.isfinite(total) and total.item() > 0
    total.backward()
    head = model.model.roi_heads.mask_predictor.mask_fcn_logits.weight
    assert head.grad is not None and head.grad.abs().sum() > 0


@pytest.mark.parametrize("h,w", [(128, 128), (96, 128), (128, 64)])
def test_internal_transform_is_identity_at_letterboxed_size(model, h, w):
    images, _ = _batch(1, h, w)
    model.eval()
    image_list, _ = model.model.transform(list(images.float().div(255).unbind(0)))
    assert image_list.image_sizes == [(h, w)]
    normalized = (images[0].float() / 255 - torch.tensor([0.485, 0.456, 0.406])[:, None, None]) \
        / torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    assert torch.allclose(image_list.tensors[0, :, :h, :w], normalized, atol=1e-5)


def test_predict_contract(model):
    images, _ = _batch(2, 96, 128)
    model.train()
    out = model.predict(images, score_thr=0.0, max_det=7)
    assert len(out) == 2 and model.training  # the mode is restored
    for o in out:
        k = o["boxes"].shape[0]
        assert k <= 7
        assert o["masks"].shape == (k, 96, 128)
        assert o["scores"].shape == (k,) and o["labels"].dtype == torch.int64
        if k:
            assert int(o["labels"].min()) >= 0 and int(o["labels"].max()) < 3
            assert float(o["masks"].min()) >= 0 and float(o["masks"].max()) <= 1
    # thresholds are restored after the call
    assert model.model.roi_heads.score_thresh == 0.05 and model.model.roi_heads.detections_per_img == 100


@pytest.mark.parametrize("n,frozen", [(0, []), (2, ["conv1", "layer1"]), (5, ["conv1", "layer1", "layer4"])])
def test_freeze_first_stages(n, frozen):
    m = build_maskrcnn("r50-fpn", 1, imgsz=64, freeze=n)
    body = m.model.backbone.body
    for name in frozen:
        assert all(not p.requires_grad for p in getattr(body, name).parameters()), name
    names_frozen = {s for stage in BACKBONE_STAGES[:n] for s in stage}
    for name in ("layer2", "layer3", "layer4"):
        if name not in names_frozen:
            assert all(p.requires_grad for p in getattr(body, name).parameters()), name
    assert all(p.requires_grad for p in m.model.roi_heads.parameters())


@pytest.mark.parametrize("size,n_out", [("r50-fpn", 4), ("r50-fpn-v2", 2)])
def test_heads_count_the_background(size, n_out):
    m = build_maskrcnn(size, n_out - 1, imgsz=64)
    assert m.num_classes == n_out - 1
    assert m.model.roi_heads.box_predictor.cls_score.out_features == n_out
    assert m.model.roi_heads.mask_predictor.mask_fcn_logits.out_channels == n_out
    assert m.model.transform.min_size == (64,) and m.model.transform.max_size == 64


def test_pretrained_offline_names_url_and_file(monkeypatch, tmp_path):
    from urllib.error import URLError

    from torchvision.models._api import WeightsEnum

    def offline(self, *a, **k):
        raise URLError("no network")

    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(WeightsError) as e:
        build_maskrcnn("r50-fpn-v2", 2, imgsz=64, pretrained=True)
    msg = str(e.value)
    assert "https://download.pytorch.org/models/maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth" in msg
    assert str(tmp_path / "hub" / "checkpoints" / "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth") in msg


def test_pretrained_replaces_both_predictors(monkeypatch):
    """With weights available (here: a random COCO-shaped state dict), heads are rebuilt for our classes."""
    from torchvision.models._api import WeightsEnum
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    coco = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91).state_dict()
    monkeypatch.setattr(WeightsEnum, "get_state_dict", lambda self, *a, **k: coco)
    m = build_maskrcnn("r50-fpn", 2, imgsz=64, pretrained=True)
    assert m.model.roi_heads.box_predictor.cls_score.out_features == 3
    assert m.model.roi_heads.mask_predictor.mask_fcn_logits.out_channels == 3
    w = m.model.backbone.body.layer1[0].conv1.weight
    assert torch.equal(w, coco["backbone.body.layer1.0.conv1.weight"])


def test_unknown_size_lists_valid():
    with pytest.raises(KeyError, match="r50-fpn, r50-fpn-v2"):
        build_maskrcnn("r101", 1)
