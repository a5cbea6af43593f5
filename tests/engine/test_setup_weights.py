"""`--weights` takes an instseg checkpoint or, for native families, an MMDetection checkpoint file."""

from __future__ import annotations

import pytest
import torch

from instseg.config import TrainConfig
from instseg.engine.setup import build_for_run
from instseg.errors import WeightsError
from instseg.models.build import build_model


def test_mmdetection_checkpoint_via_weights(tmp_path):
    upstream = build_model("rtmdet-ins", "tiny", 80)
    state = {k: v + 0.5 if v.is_floating_point() else v for k, v in upstream.state_dict().items()}
    path = tmp_path / "rtmdet-ins_tiny_coco.pth"
    torch.save({"meta": {"mmdet_version": "3.3.0"}, "state_dict": state}, path)

    cfg = TrainConfig(architecture="rtmdet-ins", model="tiny", imgsz=128, weights=path)
    model = build_for_run(cfg, num_classes=3, log=lambda *_: None)
    mine = model.state_dict()
    key = next(k for k in mine if "backbone" in k and k.endswith("weight"))
    assert torch.equal(mine[key], state[key])  # the upstream weights were loaded
    cls = [k for k in mine if "rtm_cls" in k and k.endswith("weight")]
    assert cls and all(mine[k].shape[0] == 3 for k in cls)  # only the classifier changed shape


def test_missing_weights_file_names_it(tmp_path):
    cfg = TrainConfig(architecture="rtmdet-ins", model="tiny", imgsz=128, weights=tmp_path / "nope.pth")
    with pytest.raises(WeightsError, match="nope.pth"):
        build_for_run(cfg, num_classes=3, log=lambda *_: None)


def test_pretrained_backbone_is_refused_where_it_has_no_meaning():
    from instseg.config import ConfigError

    cfg = TrainConfig(architecture="maskrcnn", model="r50-fpn", imgsz=128, pretrained_backbone=True)
    with pytest.raises(ConfigError, match="pretrained-backbone"):
        build_for_run(cfg, num_classes=3, log=lambda *_: None)


def test_pretrained_backbone_reaches_the_native_builder(monkeypatch):
    import instseg.engine.setup as setup_mod

    seen = {}

    def fake_build(arch, size, nc, **kw):
        seen.update(kw)
        return build_model(arch, size, nc, imgsz=kw["imgsz"])

    monkeypatch.setattr("instseg.models.build.build_model", fake_build)
    cfg = TrainConfig(architecture="solov2", model="nano", imgsz=128, pretrained_backbone=True)
    setup_mod.build_for_run(cfg, num_classes=2, log=lambda *_: None)
    assert seen["pretrained_backbone"] is True


def test_roi_batch_reaches_two_stage_models_and_is_refused_elsewhere():
    from instseg.config import ConfigError, TrainConfig
    from instseg.engine.setup import build_for_run

    m = build_for_run(TrainConfig(architecture="maskrcnn", model="r50-fpn", imgsz=64, roi_batch=128), 1,
                      log=lambda *_: None)
    assert m.model.roi_heads.fg_bg_sampler.batch_size_per_image == 128
    default = build_for_run(TrainConfig(architecture="maskrcnn", model="r50-fpn", imgsz=64), 1, log=lambda *_: None)
    assert default.model.roi_heads.fg_bg_sampler.batch_size_per_image == 512
    with pytest.raises(ConfigError, match="roi_batch=64: rtmdet-ins samples no RoIs"):
        build_for_run(TrainConfig(architecture="rtmdet-ins", model="tiny", imgsz=64, roi_batch=64), 1)
    with pytest.raises(ConfigError, match="positive"):
        build_for_run(TrainConfig(architecture="maskrcnn", model="r50-fpn", imgsz=64, roi_batch=0), 1)
