"""`instseg list-models`: every architecture and size, its backend status and the install command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from instseg import listing
from instseg.models.registry import ARCHITECTURES, get_architecture, get_size


def test_every_size_is_listed():
    table = listing.render_model_table()
    rows = [line.split()[:2] for line in table.splitlines()[2:] if line.strip()]
    want = [[a.name, s] for a in ARCHITECTURES.values() for s in a.sizes]
    assert [r for r in rows if len(r) == 2 and r[0] in ARCHITECTURES] == want


def test_a_missing_backend_shows_why_and_the_install_command(monkeypatch):
    monkeypatch.setattr(listing, "backend_status",
                        lambda name: "ultralytics is not installed: pip install 'instseg[yolo]'"
                        if name == "ultralytics" else None)
    table = listing.render_model_table()
    assert "backend missing" in table
    assert "yolo11-seg: ultralytics is not installed: pip install 'instseg[yolo]'" in table
    assert all("backend missing" not in line for line in table.splitlines() if line.startswith("solov2"))


@pytest.mark.parametrize("arch,size", [("nosuch", None), ("solov2", "huge")])
def test_unknown_names_list_the_valid_ones(arch, size):
    with pytest.raises(KeyError, match="valid"):
        get_size(arch, size) if size else get_architecture(arch)


def test_listing_does_not_import_torch():
    code = "import sys; from instseg.listing import render_model_table; render_model_table(); " \
           "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
