"""Copy-paste: flipped copies pasted where they overlap < 30 %, occluded instances lose the pasted pixels."""

from __future__ import annotations

import numpy as np
import pytest

from instseg.augment.copy_paste import copy_paste, ioa
from instseg.augment.sample import Sample
from instseg.augment.targets import to_targets


def _rect(x1, y1, x2, y2):
    return [np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], float)]


def _sample(polys):
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    return Sample(
        image=img,
        cls=np.arange(len(polys), dtype=np.int64),
        polys=polys,
        masks=[None] * len(polys),
        boxes=np.zeros((len(polys), 4)),
    )


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ([[0, 0, 10, 10]], [[5, 5, 15, 15]], [[0.25]]),
        ([[0, 0, 10, 10]], [[20, 20, 30, 30]], [[0.0]]),
        ([[0, 0, 10, 10]], [[2, 2, 4, 4]], [[1.0]]),
    ],
)
def test_ioa(a, b, expected):
    np.testing.assert_allclose(ioa(np.array(a, float), np.array(b, float)), expected)


def test_paste_and_occlusion():
    s = _sample([_rect(2, 10, 12, 20), _rect(40, 0, 64, 64)])
    out = copy_paste(s, np.random.default_rng(0), 1.0)
    t = to_targets(out, 1, 1.0)
    # only the small one is a candidate: the big one's copy would cover it entirely
    assert t["labels"].tolist() == [0, 1, 0]
    np.testing.assert_allclose(t["boxes"], [[2, 10, 12, 20], [40, 0, 64, 64], [52, 10, 62, 20]])
    assert t["areas"].tolist() == [100, 24 * 64 - 100, 100]
    np.testing.assert_array_equal(out.image[10:20, 52:62], s.image[10:20, 2:12][:, ::-1])
    assert t["masks"][1][10:20, 52:62].sum() == 0 and t["masks"][2][10:20, 52:62].all()


def test_nothing_to_paste():
    s = _sample([_rect(0, 0, 64, 64)])  # its flipped copy covers itself
    assert copy_paste(s, np.random.default_rng(0), 1.0) is s
    assert copy_paste(_sample([]), np.random.default_rng(0), 1.0).cls.shape == (0,)
