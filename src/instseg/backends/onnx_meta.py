"""The instseg metadata an exported ``.onnx`` carries in its ``metadata_props``, and a reader that needs
neither onnx nor onnxruntime.

Every key starts with ``instseg.``; values are strings (JSON for lists and dicts):

========================  ==========================================================================
``instseg.format``        metadata layout version (``FORMAT_VERSION``)
``instseg.version``       instseg version that exported the file
``instseg.kind``          ``native`` (SOLOv2, RTMDet-Ins), ``torchvision`` (Mask R-CNN) or ``ultralytics``
``instseg.architecture``  registry name (``rtmdet-ins``, ``solov2``, ``maskrcnn``, ``yolo11-seg`` ...)
``instseg.model``         the size (``tiny``, ``nano``, ``r50-fpn``, ``n`` ...)
``instseg.names``         JSON list of class names (index = 0-based label)
``instseg.imgsz``         the square letterbox size the graph was exported at
``instseg.dynamic``       ``true``: batch, height and width are free (multiples of 32); ``false``: fixed
``instseg.batch``         the fixed batch of a static graph (1)
``instseg.half``          ``true`` for an FP16 graph
``instseg.input``         what the input tensor holds (uint8 RGB NCHW, letterboxed; normalization is inside)
``instseg.mean``          JSON mean the graph subtracts (in ``instseg.channel_order``), for information
``instseg.std``           JSON std the graph divides by
``instseg.channel_order`` ``RGB`` or ``BGR``: the order the network sees after its in-graph flip
``instseg.outputs``       JSON list of the graph's output names, in order
``instseg.postprocess``   JSON parameters of the numpy post-process (``backends/onnx_post.py``)
``instseg.source``        file name of the checkpoint it was exported from
========================  ==========================================================================
"""

from __future__ import annotations

import json
import os
from pathlib import Path

PREFIX = "instseg."
FORMAT_VERSION = "1"
KINDS = ("native", "torchvision", "ultralytics")
_METADATA_FIELD = 14  # ModelProto.metadata_props (repeated StringStringEntryProto {key = 1; value = 2})


class _Truncated(ValueError):
    pass


def _varint(buf, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise _Truncated("varint past the end")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _read_varint(f) -> int | None:
    result = shift = 0
    while True:
        c = f.read(1)
        if not c:
            if shift == 0:
                return None  # clean end of file
            raise _Truncated("varint past the end")
        result |= (c[0] & 0x7F) << shift
        if not c[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _entry(buf: bytes) -> tuple[str, str]:
    key = value = ""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        if tag & 7 != 2:
            raise ValueError("metadata entry field is not a string")
        n, pos = _varint(buf, pos)
        text = buf[pos:pos + n].decode("utf-8")
        pos += n
        if tag >> 3 == 1:
            key = text
        elif tag >> 3 == 2:
            value = text
    return key, value


def read_metadata_props(path: str | Path) -> dict[str, str]:
    """All ``metadata_props`` of an ONNX file as a dict, read from the protobuf wire format: the top-level
    fields are walked and everything but field 14 is skipped with a seek (the graph is never read into
    memory). Raises ValueError when the file is not a well-formed ONNX ModelProto."""
    path = Path(path)
    size = os.path.getsize(path)
    props: dict[str, str] = {}
    with open(path, "rb") as f:
        fields = 0
        while True:
            try:
                tag = _read_varint(f)
            except _Truncated as e:
                raise ValueError(f"truncated protobuf ({e})") from e
            if tag is None:
                break
            field, wire = tag >> 3, tag & 7
            if field == 0:
                raise ValueError("field number 0")
            if wire == 0:
                _read_varint(f)
            elif wire == 1:
                f.seek(8, os.SEEK_CUR)
            elif wire == 5:
                f.seek(4, os.SEEK_CUR)
            elif wire == 2:
                n = _read_varint(f)
                if n is None or f.tell() + n > size:
                    raise ValueError("length-delimited field runs past the end of the file")
                if field == _METADATA_FIELD:
                    key, value = _entry(f.read(n))
                    props[key] = value
                else:
                    f.seek(n, os.SEEK_CUR)
            else:
                raise ValueError(f"wire type {wire} is not used by ONNX")
            if f.tell() > size:
                raise ValueError("field runs past the end of the file")
            fields += 1
        if fields == 0:
            raise ValueError("empty file")
    return props


def instseg_metadata(props: dict[str, str]) -> dict:
    """The ``instseg.*`` entries of ``props`` without the prefix, JSON values decoded, flags as bools,
    ``imgsz``/``batch`` as ints. Empty when the file has no instseg metadata."""
    out: dict = {}
    for key, value in props.items():
        if not key.startswith(PREFIX):
            continue
        name = key[len(PREFIX):]
        if name in ("names", "mean", "std", "outputs", "postprocess"):
            out[name] = json.loads(value)
        elif name in ("dynamic", "half", "simplified"):
            out[name] = value.lower() == "true"
        elif name in ("imgsz", "batch", "mask_stride", "opset"):
            out[name] = int(value)
        else:
            out[name] = value
    return out


def encode_metadata(meta: dict) -> dict[str, str]:
    """The inverse of :func:`instseg_metadata`: ``instseg.``-prefixed string entries."""
    out = {}
    for name, value in meta.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (list, tuple, dict)):
            text = json.dumps(value)
        else:
            text = str(value)
        out[PREFIX + name] = text
    return out


__all__ = ["FORMAT_VERSION", "KINDS", "PREFIX", "encode_metadata", "instseg_metadata", "read_metadata_props"]
