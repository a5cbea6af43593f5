"""Mask-aware augmentations: one sampled matrix per sample for image, polygons and masks alike; masks
rasterized once at the model's stride. Entry points: :func:`instseg.augment.pipeline.train_sample` and
:func:`instseg.augment.sample.letterbox`; the torch Dataset (above the augmentations it applies) is :mod:`instseg.augment.dataset`."""
