"""Layers shared by the native model families (conv + norm + activation blocks with mmcv's key names)."""
