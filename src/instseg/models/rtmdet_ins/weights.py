"""Loading weights into RTMDet-Ins: MMDetection checkpoints (model zoo or local), ImageNet CSPNeXt backbones.

Keys must match exactly (no missing or unexpected key); when the class count differs, only the class layers
``bbox_head.rtm_cls.*`` are re-initialized, and the returned note says so.
"""

from __future__ import annotations

from pathlib import Path

import torch

from instseg.errors import WeightsError
from instseg.models.common.checkpoints import cached_download, read_mmdet_state_dict


def is_classifier_key(key: str) -> bool:
    return key.startswith("bbox_head.rtm_cls.")


def load_rtmdet_ins_state(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> list[str]:
    """Load ``state`` (MMDetection key names) into ``model`` strictly; returns notes (re-initialized
    layers)."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise WeightsError(
            f"{source}: does not fit RTMDet-Ins size {getattr(model, 'size_name', '?')!r}: {len(missing)} missing keys "
            f"{missing[:4]}, {len(unexpected)} unexpected keys {unexpected[:4]}; pick the --model size the "
            "checkpoint was trained with (tiny, s, m, l, x)"
        )
    bad = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if not is_classifier_key(k) and state[k].shape != own[k].shape
    ]
    if bad:
        raise WeightsError(
            f"{source}: shapes differ from this model's: {bad[:4]}; pick the matching --model size"
        )
    reinit = sorted(k for k in own if is_classifier_key(k) and state[k].shape != own[k].shape)
    model.load_state_dict({k: v for k, v in state.items() if k not in reinit}, strict=False)
    notes = []
    if reinit:
        model.reset_classifier()
        old = state["bbox_head.rtm_cls.0.weight"].shape[0]
        notes.append(
            f"{source}: {old} classes in the checkpoint, {model.num_classes} in the model: re-initialized "
            f"the class layers ({', '.join(reinit)})"
        )
    return notes


def load_mmdet_checkpoint(model: torch.nn.Module, path: str | Path) -> list[str]:
    """Load an MMDetection RTMDet-Ins checkpoint file (``meta`` + ``state_dict``) into ``model``; returns
    notes."""
    state, notes = read_mmdet_state_dict(path)
    return notes + load_rtmdet_ins_state(model, state, str(path))


def load_coco_pretrained(model: torch.nn.Module, size: str, path: str | Path | None = None) -> list[str]:
    """MMDetection's COCO weights of ``size`` (downloaded to torch.hub's cache, or ``path``)."""
    from instseg.models.rtmdet_ins.config import get_rtmdet_ins_size

    return load_mmdet_checkpoint(model, path or cached_download(get_rtmdet_ins_size(size).coco_url))


def load_backbone_imagenet(model: torch.nn.Module, size: str, path: str | Path | None = None) -> list[str]:
    """The ImageNet CSPNeXt weights of ``size`` (keys ``backbone.*`` of MMDetection's file) into the
    backbone."""
    from instseg.models.rtmdet_ins.config import RTMDET_INS_SIZES, get_rtmdet_ins_size

    url = get_rtmdet_ins_size(size).backbone_url
    if path is None:
        if url is None:
            have = ", ".join(k for k, v in RTMDET_INS_SIZES.items() if v.backbone_url)
            raise WeightsError(
                f"MMDetection's RTMDet-Ins {size!r} config starts from no ImageNet backbone; sizes with "
                f"one: {have}; or use --pretrained (COCO weights of the whole model)"
            )
        path = cached_download(url)
    state, notes = read_mmdet_state_dict(path)
    back = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    own = model.backbone.state_dict()
    missing, unexpected = sorted(set(own) - set(back)), sorted(set(back) - set(own))
    if missing or unexpected:
        raise WeightsError(
            f"{path}: not a CSPNeXt-{size} backbone: missing {missing[:4]}, unexpected {unexpected[:4]}"
        )
    model.backbone.load_state_dict(back)
    return notes


__all__ = ["load_backbone_imagenet", "load_coco_pretrained", "load_mmdet_checkpoint", "load_rtmdet_ins_state"]
