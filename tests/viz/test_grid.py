"""The augmentation grid: drawing, tiling, and the `instseg viz augment` command."""

from __future__ import annotations

import numpy as np
import pytest

from instseg.viz.grid import augment_grid, class_color, draw_instances, tile


def test_draw_instances_blends_only_inside_masks():
    img = np.full((32, 32, 3), 100, np.uint8)
    masks = np.zeros((1, 8, 8), np.uint8)
    masks[0, 2:4, 2:4] = 1  # stride 4: pixels 8..15
    out = draw_instances(
        img, np.array([[0.0, 0.0, 0.0, 0.0]]), np.array([3]), masks, ["a", "b", "c", "d"], alpha=0.5
    )
    expected = ((100 * 0.5) + np.array(class_color(3)) * 0.5).astype(np.uint8)
    np.testing.assert_array_equal(out[12, 12], expected)
    assert (out[20:, 20:] == 100).all()  # away from the mask, the box and the label: untouched
    assert (img == 100).all()  # the input is not modified


@pytest.mark.parametrize("n,cols,shape", [(4, None, (68, 68, 3)), (3, 3, (32, 104, 3)), (5, 2, (104, 68, 3))])
def test_tile_shape(n, cols, shape):
    assert tile([np.zeros((32, 32, 3), np.uint8)] * n, cols=cols).shape == shape


def test_augment_grid_and_cli(demo_data, tmp_path):
    from typer.testing import CliRunner

    from instseg.cli import app

    out = augment_grid(demo_data, tmp_path / "g.png", n=4, imgsz=64, seed=1)
    import cv2

    assert cv2.imread(str(out)).shape == (132, 132, 3)
    res = CliRunner().invoke(
        app,
        [
            "viz",
            "augment",
            "--data",
            str(demo_data),
            "--n",
            "2",
            "--imgsz",
            "64",
            "--out",
            str(tmp_path / "c.png"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert cv2.imread(str(tmp_path / "c.png")).shape == (64, 132, 3)
