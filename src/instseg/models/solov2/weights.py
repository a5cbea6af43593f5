"""Loading weights into SOLOv2: MMDetection checkpoints, instseg checkpoints, torchvision ImageNet ResNets.

Downloads and file reading are the shared helpers of ``instseg.models.common.checkpoints``: torch.hub's
cache (``torch.hub.get_dir()/checkpoints/<file name>``), a WeightsError naming the file and folder when
offline, ``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

from pathlib import Path

import torch

from instseg.errors import WeightsError

CLASSIFIER_KEYS = ("mask_head.conv_cls.weight", "mask_head.conv_cls.bias")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The parameter dict of an MMDetection (``state_dict``), instseg (``model``) or plain checkpoint."""
    from instseg.models.common.checkpoints import read_mmdet_state_dict

    return read_mmdet_state_dict(path)[0]


def load_solov2_state(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> list[str]:
    """Load ``state`` into a SOLOv2 model, requiring every key and shape to match, except the category
    layer ``mask_head.conv_cls`` when the class count differs: that one is re-initialized.

    Returns the keys that were re-initialized (empty when the class counts agree).
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise WeightsError(
            f"{source}: does not fit SOLOv2 {getattr(model.cfg, 'description', '')!r}: "
            f"{len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected keys {unexpected[:5]}; "
            "pick the --model size the checkpoint was trained with"
        )
    reinit = [k for k in CLASSIFIER_KEYS if state[k].shape != own[k].shape]
    bad = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
           if k not in CLASSIFIER_KEYS and state[k].shape != own[k].shape]
    if bad:
        raise WeightsError(f"{source}: shapes differ from this model's: {bad[:5]}; pick the matching --model size")
    model.load_state_dict({k: v for k, v in state.items() if k not in reinit}, strict=False)
    if reinit:
        model.mask_head.reset_classifier()
    return reinit


def load_backbone_imagenet(model: torch.nn.Module, path: str | Path | None = None) -> None:
    """torchvision's ImageNet ResNet weights (``fc.*`` dropped) into ``model.backbone``."""
    from instseg.models.solov2.backbone import torchvision_imagenet_url

    from instseg.models.common.checkpoints import cached_download

    depth = model.backbone.depth
    path = path or cached_download(torchvision_imagenet_url(depth))
    state = {k: v for k, v in read_state_dict(path).items() if not k.startswith("fc.")}
    result = model.backbone.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise WeightsError(f"{path}: not a torchvision ResNet{depth}: missing {result.missing_keys[:5]}, "
                           f"unexpected {result.unexpected_keys[:5]}")


def load_coco_pretrained(model: torch.nn.Module, size: str, path: str | Path | None = None) -> list[str]:
    """MMDetection's COCO weights for ``size`` (those of the same layout); returns re-initialized keys."""
    from instseg.models.common.checkpoints import cached_download
    from instseg.models.solov2.config import SOLOV2_SIZES

    url = SOLOV2_SIZES[size].coco_url
    if path is None:
        if url is None:
            have = ", ".join(k for k, v in SOLOV2_SIZES.items() if v.coco_url)
            raise WeightsError(f"MMDetection publishes no COCO SOLOv2 weights with the layout of size {size!r}; "
                               f"sizes with COCO weights: {have}; or use --pretrained-backbone (ImageNet)")
        path = cached_download(url)
    return load_solov2_state(model, read_state_dict(path), str(path))
