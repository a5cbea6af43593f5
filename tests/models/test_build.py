"""build_model: registry lookup, builder strings, the model contract check."""

from __future__ import annotations

import pytest

from instseg.errors import InstsegError
from instseg.models import registry
from instseg.models.build import build_model, import_builder


@pytest.mark.parametrize("spec,match", [("no_colon", "must look like"), ("instseg.models.build:nope", "has no function"),
                                        (":x", "must look like")])
def test_bad_builder_strings(spec, match):
    with pytest.raises(ValueError, match=match):
        import_builder(spec)


def test_unknown_architecture_lists_valid_names():
    with pytest.raises(KeyError, match="maskrcnn"):
        build_model("nope", "x", 1)


def test_unknown_size_lists_valid_sizes():
    with pytest.raises(KeyError, match="r50-fpn, r50-fpn-v2"):
        build_model("maskrcnn", "r18", 1)


def test_planned_architecture_is_refused(monkeypatch):
    spec = registry.ArchitectureSpec(name="later", backend="native", default_size="s", status="planned",
                                     sizes={"s": registry.SizeSpec("s")})
    monkeypatch.setitem(registry.ARCHITECTURES, "later", spec)
    with pytest.raises(InstsegError, match="not trainable yet"):
        build_model("later", "s", 1)


def test_builder_must_return_the_contract(monkeypatch):
    spec = registry.ArchitectureSpec(name="bad", backend="native", default_size="s",
                                     builder="builtins:slice", sizes={"s": registry.SizeSpec("s")})
    monkeypatch.setitem(registry.ARCHITECTURES, "bad", spec)
    with pytest.raises(TypeError, match="forward_train"):
        build_model("bad", "s", 1)


def test_maskrcnn_builds_with_background_class():
    m = build_model("maskrcnn", "r50-fpn", 2, imgsz=64)
    assert m.num_classes == 2 and m.model.roi_heads.box_predictor.cls_score.out_features == 3
