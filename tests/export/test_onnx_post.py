"""The numpy post-process against the PyTorch functions it reproduces, on random inputs."""

import importlib.util

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from instseg.backends import onnx_post as post


@pytest.mark.parametrize("shape,out", [((3, 5, 7), (40, 56)), ((2, 20, 20), (160, 160)), ((1, 9, 4), (13, 3))])
def test_resize_bilinear_equals_interpolate(shape, out):
    x = torch.rand(shape)
    ref = F.interpolate(x[None], size=out, mode="bilinear", align_corners=False)[0].numpy()
    np.testing.assert_allclose(post.resize_bilinear(x.numpy(), *out), ref, atol=1e-6)


@pytest.mark.parametrize("n,classes,thr", [(50, 1, 0.5), (200, 3, 0.6), (1, 2, 0.5), (0, 2, 0.5)])
def test_batched_nms_equals_torchvision(n, classes, thr):
    from torchvision.ops import batched_nms

    g = torch.Generator().manual_seed(n)
    xy = torch.rand(n, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + 5 + torch.rand(n, 2, generator=g) * 30], 1)
    scores = torch.rand(n, generator=g)
    labels = torch.randint(0, classes, (n,), generator=g)
    ref = batched_nms(boxes, scores, labels, thr).numpy()
    got = post.batched_nms(boxes.numpy(), scores.numpy(), labels.numpy(), thr)
    assert got.tolist() == ref.tolist()
    assert n < 50 or 0 < len(got) < n  # something was suppressed, something kept


@pytest.mark.parametrize("kernel", ["gaussian", "linear"])
def test_matrix_nms_equals_torch(kernel):
    from instseg.models.solov2.matrix_nms import matrix_nms

    g = torch.Generator().manual_seed(0)
    masks = torch.rand(30, 16, 16, generator=g) > 0.6
    labels = torch.randint(0, 3, (30,), generator=g)
    scores = torch.rand(30, generator=g)
    area = masks.sum((1, 2)).float()
    ref = matrix_nms(masks, labels, scores, mask_area=area, nms_pre=20, max_num=10, kernel=kernel, sigma=2.0,
                     filter_thr=0.05)
    got = post.matrix_nms(masks.numpy(), labels.numpy(), scores.numpy(), area.numpy(), nms_pre=20, max_num=10,
                          kernel=kernel, sigma=2.0, filter_thr=0.05)
    np.testing.assert_allclose(got[0], ref[0].numpy(), atol=1e-6)
    assert got[1].tolist() == ref[1].tolist() and got[2].tolist() == ref[2].tolist()


def test_rtmdet_mask_logits_equal_dynamic_convs():
    from instseg.models.rtmdet_ins.head import dynamic_mask_logits, grid_priors

    g = torch.Generator().manual_seed(0)
    feat = torch.randn(8, 10, 12, generator=g)
    priors = grid_priors([(10, 12), (5, 6), (3, 3)])[[0, 17, 121, 140]]
    kernels = torch.randn(4, 169, generator=g)
    ref = dynamic_mask_logits(feat, kernels, priors).numpy()
    got = post.rtmdet_mask_logits(feat.numpy(), kernels.numpy(), priors[:, [0, 1, 2]].numpy())
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_rtmdet_priors_equal_grid_priors():
    from instseg.models.rtmdet_ins.head import grid_priors

    ref = grid_priors([(20, 12), (10, 6), (5, 3)]).numpy()
    np.testing.assert_array_equal(post.rtmdet_priors((160, 96)), ref[:, :3])


def test_masks_to_boxes_equal_solov2():
    from instseg.models.solov2.postprocess import masks_to_boxes

    masks = torch.zeros(3, 9, 11, dtype=torch.bool)
    masks[0, 2:5, 3:8] = True
    masks[1, 8, 10] = True
    np.testing.assert_array_equal(post.masks_to_boxes(masks.numpy()), masks_to_boxes(masks).numpy())


def test_maskrcnn_filter_keeps_above_conf_in_order():
    scores = np.array([0.9, 0.5, 0.3, 0.01], np.float32)
    out = post.maskrcnn_postprocess(np.arange(16, dtype=np.float32).reshape(4, 4), scores, np.array([1, 2, 1, 1]),
                                    np.zeros((4, 1, 5, 5), np.float32), (5, 5), {}, conf=0.3, max_det=5)
    assert out["scores"].tolist() == pytest.approx([0.9, 0.5]) and out["labels"].tolist() == [0, 1]
    assert out["masks"].shape == (2, 5, 5)


@pytest.mark.skipif(importlib.util.find_spec("detectron2") is None, reason="detectron2 is not built (make detectron2)")
def test_paste_masks_equals_detectron2():
    """The numpy paste of 28x28 probabilities equals Detectron2's ``paste_masks_in_image`` (CPU path): boxes
    inside, across the border, sub-pixel and larger than the image."""
    from detectron2.layers.mask_ops import paste_masks_in_image

    rng = np.random.default_rng(0)
    h, w = 70, 90
    boxes = np.array([[10.3, 5.7, 40.2, 50.9], [-5.0, -3.0, 20.5, 15.2], [60.0, 40.0, 95.0, 75.0],
                      [30.2, 30.4, 30.9, 31.1], [-10.0, -10.0, 120.0, 90.0], [0.0, 0.0, 90.0, 70.0]], np.float32)
    probs = rng.random((len(boxes), 28, 28)).astype(np.float32)
    probs[2] = 0.9  # a constant map: its support is the box, widened by one pixel where the padding blends
    ours = post.paste_masks(probs, boxes, h, w) > 0.5
    theirs = paste_masks_in_image(torch.from_numpy(probs), torch.from_numpy(boxes), (h, w)).numpy()
    assert ours.shape == theirs.shape == (len(boxes), h, w)
    assert (ours != theirs).sum() <= 2, np.argwhere(ours != theirs)  # float32 sums in another order at 0.5
    assert ours.any((1, 2)).all()


def test_detectron2_postprocess_filters_then_pastes():
    boxes = np.array([[0, 0, 10, 10], [5, 5, 20, 20], [1, 1, 3, 3]], np.float32)
    out = post.detectron2_postprocess(boxes, np.array([0.9, 0.5, 0.0005], np.float32), np.array([1, 0, 2]),
                                      np.ones((3, 28, 28), np.float32), (32, 32), {"mask_thr": 0.5},
                                      conf=0.001, max_det=100)
    assert out["labels"].tolist() == [1, 0] and out["masks"].shape == (2, 32, 32)  # 0-based labels kept
    assert out["masks"][0, :10, :10].all() and not out["masks"][0, 12:, 12:].any()
