import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

pytest.importorskip("onnxruntime", reason="the export extra is not installed: pip install 'instseg[export]'")
pytest.importorskip("onnx", reason="the export extra is not installed: pip install 'instseg[export]'")
