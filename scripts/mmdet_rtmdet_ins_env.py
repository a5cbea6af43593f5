"""Helpers for the scripts that run in an MMDetection 3.3 environment (mmcv + mmdet importable): build
MMDetection's RTMDet-Ins of one size from its own config file. Not imported by instseg itself."""

from __future__ import annotations

from pathlib import Path

CONFIG_NAMES = {
    "tiny": "rtmdet-ins_tiny_8xb32-300e_coco.py",
    "s": "rtmdet-ins_s_8xb32-300e_coco.py",
    "m": "rtmdet-ins_m_8xb32-300e_coco.py",
    "l": "rtmdet-ins_l_8xb32-300e_coco.py",
    "x": "rtmdet-ins_x_8xb16-300e_coco.py",
}


def _to_bn(node):
    """Replace SyncBN (needs a process group and CUDA) by BN with the same defaults, recursively."""
    if isinstance(node, dict):
        for k, v in list(node.items()):
            if k == "norm_cfg" and isinstance(v, dict) and v.get("type") == "SyncBN":
                node[k] = dict(v, type="BN")
            else:
                _to_bn(v)
    elif isinstance(node, list):
        for v in node:
            _to_bn(v)


def build_mmdet_rtmdet_ins(size: str, num_classes: int = 80):
    """MMDetection's RTMDet-Ins detector of ``size`` from its packaged config (SyncBN -> BN, no pretrained
    init)."""
    import logging
    import warnings

    import mmdet
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    warnings.filterwarnings("ignore")
    logging.getLogger("mmengine").setLevel(logging.ERROR)
    register_all_modules()
    cfg_path = Path(mmdet.__file__).parent / ".mim" / "configs" / "rtmdet" / CONFIG_NAMES[size]
    cfg = Config.fromfile(str(cfg_path))
    model_cfg = cfg.model.to_dict() if hasattr(cfg.model, "to_dict") else dict(cfg.model)
    _to_bn(model_cfg)
    model_cfg["backbone"].pop("init_cfg", None)
    model_cfg["bbox_head"]["num_classes"] = num_classes
    from mmengine.config import ConfigDict

    model = MODELS.build(ConfigDict(model_cfg))
    from mmengine.logging import MMLogger

    logger = MMLogger.get_current_instance()
    for h in [logger, *logger.handlers]:
        h.setLevel(logging.ERROR)
    model.init_weights()
    return model, cfg_path
