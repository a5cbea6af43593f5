"""Engine fixtures: `tiny_arch` (tests/conftest.py) registers tests/engine/tiny_model.py."""
