"""Rectangular validation batches."""

from __future__ import annotations

from pathlib import Path

import pytest

from instseg.augment.letterbox import rect_batches
from instseg.data.types import ImageRecord


def _recs(sizes):
    return [ImageRecord(path=Path(f"{i}.jpg"), width=w, height=h) for i, (w, h) in enumerate(sizes)]


@pytest.mark.parametrize(
    "sizes,batch,expected_batches,expected_shapes",
    [
        ([(640, 480), (640, 360)], 2, [[1, 0]], {0: (480, 640), 1: (480, 640)}),  # 0.75*19+0.5 -> 15 strides
        ([(480, 640), (360, 640)], 2, [[0, 1]], {0: (640, 480), 1: (640, 480)}),
        ([(640, 480), (480, 640)], 2, [[0, 1]], {0: (640, 640), 1: (640, 640)}),
        (
            [(640, 320), (100, 100), (640, 480)],
            1,
            [[0], [2], [1]],
            {0: (320, 640), 2: (480, 640), 1: (640, 640)},
        ),
    ],
)
def test_rect_batches(sizes, batch, expected_batches, expected_shapes):
    batches, shapes = rect_batches(_recs(sizes), batch, 608, stride=32)
    assert batches == expected_batches and shapes == expected_shapes


def test_rect_batches_bad_batch():
    with pytest.raises(ValueError, match="batch=0"):
        rect_batches(_recs([(10, 10)]), 0, 64)
