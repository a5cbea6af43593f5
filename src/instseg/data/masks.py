"""Mask geometry: polygons <-> COCO RLE <-> binary masks, and single-ring polygons for YOLO labels.

Conventions (the COCO/pycocotools ones, used everywhere in instseg):

* Coordinates are absolute pixels of the EXIF-oriented image. Pixel ``(row i, col j)`` covers the square
  ``[j, j+1] x [i, i+1]``; its centre is at ``(j + 0.5, i + 0.5)``. A polygon ``(0,0) (10,0) (10,10) (0,10)``
  rasterizes to exactly the 100 pixels of rows and columns 0..9.
* Polygons are float64 arrays ``(N, 2)`` of ``(x, y)``. Several polygons of one instance are a union.
* RLE is the COCO run-length encoding ``{"size": [h, w], "counts": ...}`` in column-major order; "compressed"
  means ``counts`` is the COCO LEB128-like string (instseg writes it as ``str``), "uncompressed" means a list
  of ints (used by COCO ``iscrowd`` annotations). Every function here accepts both and returns compressed.
* Masks are ``uint8`` arrays ``(H, W)`` holding 0/1.

pycocotools rasterizes polygons; instseg uses it for every polygon -> mask step so that the areas written in a
COCO JSON and the masks COCOeval scores are the same pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from instseg.data.types import Instance
from instseg.errors import DatasetError


def coco_mask_api():
    """pycocotools' mask module (imported on first use)."""
    import pycocotools.mask as mask_api

    return mask_api


def rle_as_text(rle: dict) -> dict:
    """``rle`` with its compressed counts as ``str`` (JSON-ready) and an int ``size``."""
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts}


def empty_rle(height: int, width: int) -> dict:
    """The compressed RLE of an all-zero ``height x width`` mask."""
    return mask_to_rle(np.zeros((height, width), np.uint8))


def polygons_to_rle(polygons: Sequence[np.ndarray], height: int, width: int) -> dict:
    """Rasterize the union of ``polygons`` (absolute pixel ``(x, y)`` arrays) into a compressed RLE.

    Polygons with fewer than 3 points enclose no pixel and are ignored; no polygon at all gives an empty mask.
    Parts outside the image are clipped by the rasterizer.
    """
    flat = []
    for poly in polygons:
        arr = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        if len(arr) >= 3:
            flat.append(arr.ravel().tolist())
    if not flat:
        return empty_rle(height, width)
    mask_api = coco_mask_api()
    rles = mask_api.frPyObjects(flat, int(height), int(width))
    return rle_as_text(mask_api.merge(rles) if len(rles) > 1 else rles[0])


MAX_RLE_PIXELS = 2**30  # a mask larger than ~32k x 32k is refused before it is decoded (memory bomb)


def _rle_size(size: object) -> tuple[int, int]:
    if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in size):
        raise ValueError(f"RLE 'size' must be [height, width] (two integers), got {str(size)[:40]}")
    h, w = int(size[0]), int(size[1])
    if h <= 0 or w <= 0 or h * w > MAX_RLE_PIXELS:
        raise ValueError(f"RLE size {h}x{w} must be positive and at most {MAX_RLE_PIXELS} pixels")
    return h, w


def string_rle_counts(counts: str) -> list[int]:
    """The run lengths of a compressed COCO RLE string (the LEB128-like code of the COCO API: 5 bits per
    character from '0', 0x20 = more characters follow, 0x10 on the last one = negative; from the third run
    on, a value is a difference to the run two before). ValueError when the string is not such a code."""
    runs: list[int] = []
    x = k = 0
    for ch in counts:
        c = ord(ch) - 48
        if not 0 <= c < 64:
            raise ValueError(f"RLE counts hold the character {ch!r}, outside the compressed alphabet '0'..'o'")
        x |= (c & 0x1F) << (5 * k)
        k += 1
        if c & 0x20:
            continue
        if c & 0x10:
            x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        runs.append(x)
        x = k = 0
    if k:
        raise ValueError("RLE counts end in the middle of a number (truncated string)")
    return runs


def _check_runs(runs: list[int], h: int, w: int, kind: str) -> None:
    if any(r < 0 for r in runs):
        raise ValueError(f"{kind} RLE has a negative run length")
    total = sum(runs)
    if total != h * w:
        raise ValueError(f"{kind} RLE counts sum to {total}, but size {h}x{w} has {h * w} pixels")


def normalize_rle(rle: dict) -> dict:
    """Any COCO RLE (compressed ``str``/``bytes`` counts, or uncompressed ``list`` counts) -> compressed.

    ValueError (never a crash in the C decoder) when the size is not two positive integers, when the counts
    are not a valid code or do not cover exactly ``h * w`` pixels, or when the mask would be huge."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError(f"not a COCO RLE (a dict with 'size' and 'counts'): {str(rle)[:80]}")
    h, w = _rle_size(rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        if not all(isinstance(c, int) and not isinstance(c, bool) for c in counts):
            raise ValueError("uncompressed RLE counts must be a list of integers")
        _check_runs(counts, h, w, "uncompressed")
        return rle_as_text(coco_mask_api().frPyObjects({"size": [h, w], "counts": counts}, h, w))
    if isinstance(counts, bytes):
        try:
            counts = counts.decode("ascii")
        except UnicodeDecodeError as e:
            raise ValueError("compressed RLE counts are not ASCII") from e
    if isinstance(counts, str):
        _check_runs(string_rle_counts(counts), h, w, "compressed")
        return rle_as_text({"size": [h, w], "counts": counts})
    raise ValueError(f"RLE counts must be a string or a list of ints, not {type(counts).__name__}")


def _encoded(rle: dict) -> dict:
    """The form pycocotools' C functions take: compressed with ``bytes`` counts."""
    norm = normalize_rle(rle)
    return {"size": norm["size"], "counts": norm["counts"].encode("ascii")}


def rle_to_mask(rle: dict) -> np.ndarray:
    """Decode a COCO RLE (compressed or uncompressed) into an ``(H, W)`` uint8 0/1 mask."""
    return np.ascontiguousarray(coco_mask_api().decode(_encoded(rle)))


def mask_to_rle(mask: np.ndarray) -> dict:
    """Encode an ``(H, W)`` mask (bool or any number type; non-zero = inside) into a compressed RLE (str)."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"mask_to_rle expects one (H, W) mask, got shape {arr.shape}")
    return rle_as_text(coco_mask_api().encode(np.asfortranarray(arr != 0, dtype=np.uint8)))


def rle_area(rle: dict) -> int:
    """Number of mask pixels of a COCO RLE."""
    return int(coco_mask_api().area(_encoded(rle)))


def rle_to_bbox(rle: dict) -> np.ndarray:
    """Tight ``xyxy`` box (absolute pixels, pixel edges: a mask of column 3 alone gives x1=3, x2=4).

    An empty mask gives ``[0, 0, 0, 0]``.
    """
    x, y, w, h = (float(v) for v in coco_mask_api().toBbox(_encoded(rle)))
    return np.array([x, y, x + w, y + h], dtype=np.float64)


def polygons_bbox(polygons: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    """``xyxy`` extent (absolute pixels) of the part of the polygons inside the image; zeros if none.

    The polygons are clipped to the image first (:func:`clip_polygon`), so a vertex far outside does not
    stretch the box beyond what is visible.
    """
    pts = [clip_polygon(p, width, height) for p in polygons if len(p) >= 3]
    pts = [p for p in pts if len(p)]
    if not pts:
        return np.zeros(4, np.float64)
    allp = np.concatenate(pts)
    return np.concatenate([allp.min(0), allp.max(0)]).astype(np.float64)


def instance_to_rle(inst: Instance, height: int, width: int) -> dict:
    """The instance's mask as a compressed RLE at ``height x width``.

    Polygons are rasterized; an RLE is normalized and must have the image size (else ``DatasetError``); a
    box-only instance (no polygon, no RLE) becomes its filled box, the best mask a box can stand for.
    """
    if inst.polygons:
        return polygons_to_rle(inst.polygons, height, width)
    if inst.rle is not None:
        rle = normalize_rle(inst.rle)
        if list(rle["size"]) != [int(height), int(width)]:
            raise DatasetError(
                f"RLE size {rle['size']} (h, w) does not match the image size [{height}, {width}]"
                + (f" (label line {inst.source_line})" if inst.source_line else "")
                + "; re-export the mask at the image's resolution"
            )
        return rle
    if inst.bbox is None:
        raise DatasetError("instance has no polygon, no RLE and no box: nothing to rasterize")
    x1, y1, x2, y2 = (float(v) for v in inst.bbox)
    box = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64)
    return polygons_to_rle([box], height, width)


def mask_iou(a: np.ndarray | dict, b: np.ndarray | dict) -> float:
    """Intersection over union of two masks of the same size (arrays or RLEs, mixed allowed).

    Two empty masks are identical: IoU 1.0. Two RLEs are compared without decoding.
    """
    if isinstance(a, dict) and isinstance(b, dict):
        ea, eb = _encoded(a), _encoded(b)
        if ea["size"] != eb["size"]:
            raise ValueError(f"mask_iou: sizes differ {ea['size']} vs {eb['size']}")
        mask_api = coco_mask_api()
        if mask_api.area(ea) == 0 and mask_api.area(eb) == 0:
            return 1.0
        return float(mask_api.iou([ea], [eb], [0])[0][0])
    ma = rle_to_mask(a) if isinstance(a, dict) else np.asarray(a) != 0
    mb = rle_to_mask(b) if isinstance(b, dict) else np.asarray(b) != 0
    if ma.shape != mb.shape:
        raise ValueError(f"mask_iou: shapes differ {ma.shape} vs {mb.shape}")
    ma, mb = ma.astype(bool), mb.astype(bool)
    union = int(np.count_nonzero(ma | mb))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(ma & mb)) / union


def polygon_area(poly: np.ndarray) -> float:
    """Shoelace area (pixels^2, unsigned) of one polygon ``(N, 2)``."""
    p = np.asarray(poly, np.float64).reshape(-1, 2)
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def clip_polygon(poly: np.ndarray, width: float, height: float) -> np.ndarray:
    """Clip a polygon (absolute pixels) to the image rectangle ``[0, width] x [0, height]``.

    Sutherland-Hodgman against the four borders: the result covers exactly the part of the polygon inside
    the image (a concave polygon may gain zero-width runs along the border, which enclose no pixel). Unlike
    clipping each vertex's coordinates, the shape inside the image does not change. ``(0, 2)`` if nothing
    is inside.
    """
    pts = np.asarray(poly, np.float64).reshape(-1, 2)
    for axis, limit, keep_below in (
        (0, 0.0, False),
        (0, float(width), True),
        (1, 0.0, False),
        (1, float(height), True),
    ):
        if len(pts) == 0:
            break
        inside = pts[:, axis] <= limit if keep_below else pts[:, axis] >= limit
        if inside.all():
            continue
        out = []
        prev, prev_in = pts[-1], inside[-1]
        for cur, cur_in in zip(pts, inside):
            if cur_in != prev_in:  # the edge crosses the border: add the crossing point
                t = (limit - prev[axis]) / (cur[axis] - prev[axis])
                cross = prev + t * (cur - prev)
                cross[axis] = limit
                out.append(cross)
            if cur_in:
                out.append(cur)
            prev, prev_in = cur, cur_in
        pts = np.array(out, np.float64).reshape(-1, 2)
    return pts


def _nearest_pair(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """Indices ``(i, j)`` minimizing ``|a[i] - b[j]|`` (chunked so large rings stay within memory)."""
    best, bi, bj = np.inf, 0, 0
    step = max(1, 2_000_000 // max(len(b), 1))
    for start in range(0, len(a), step):
        chunk = a[start : start + step]
        d = ((chunk[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        k = int(np.argmin(d))
        i, j = divmod(k, d.shape[1])
        if d[i, j] < best:
            best, bi, bj = float(d[i, j]), start + i, j
    return bi, bj


def join_polygons(rings: Sequence[np.ndarray]) -> np.ndarray:
    """Join several rings into one polygon with zero-width bridges (there and back at the nearest points).

    Under even-odd filling (what pycocotools' rasterizer does) the bridges cancel out, so a ring lying
    inside another becomes a hole and a disjoint ring a separate part. This is how an instance with several
    parts or holes fits in one YOLO line. Rings are inserted in the given order, each at the point nearest to
    what has been joined so far.
    """
    kept = [np.asarray(r, np.float64).reshape(-1, 2) for r in rings]
    kept = [r for r in kept if len(r) >= 3]
    if not kept:
        return np.zeros((0, 2), np.float64)
    merged = kept[0]
    for ring in kept[1:]:
        i, j = _nearest_pair(merged, ring)
        loop = np.concatenate([np.roll(ring, -j, axis=0), ring[j : j + 1]])
        merged = np.concatenate([merged[: i + 1], loop, merged[i:]])
    return merged


def _ring_from_contour(contour: np.ndarray) -> np.ndarray:
    # Contours are traced on the mask upsampled 2x; sub-pixel u has its centre at (u + 0.5) / 2 in image
    # pixels, which puts every vertex 0.25 px inside the pixel edges: rasterizing gives the pixels back.
    return (contour.reshape(-1, 2).astype(np.float64) + 0.5) / 2.0


def mask_to_polygons(mask: np.ndarray) -> list[np.ndarray]:
    """One polygon per connected part of ``mask`` (8-connectivity), each with its holes bridged in.

    The union of the returned polygons, rasterized with :func:`polygons_to_rle`, gives back ``mask`` pixel
    for pixel (the tests check blobs, holes, checkerboards and noise). Vertices lie on a quarter-pixel grid
    in absolute pixel coordinates, 0.25 px inside the mask's pixel edges. Parts are sorted by area, largest
    first.
    """
    import cv2

    arr = (np.asarray(mask) != 0).astype(np.uint8)
    if arr.ndim != 2:
        raise ValueError(f"mask_to_polygons expects one (H, W) mask, got shape {arr.shape}")
    rows, cols = np.flatnonzero(arr.any(axis=1)), np.flatnonzero(arr.any(axis=0))
    if len(rows) == 0:
        return []
    y0, x0 = int(rows[0]), int(cols[0])  # trace only the mask's box: small objects in large images are cheap
    arr = arr[y0 : int(rows[-1]) + 1, x0 : int(cols[-1]) + 1]
    up = np.repeat(np.repeat(arr, 2, axis=0), 2, axis=1)
    contours, hierarchy = cv2.findContours(up, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    hier = hierarchy[0]  # rows: next, previous, first child, parent
    offset = np.array([x0, y0], np.float64)
    parts: list[tuple[float, np.ndarray]] = []
    for idx, contour in enumerate(contours):
        if hier[idx][3] != -1:
            continue  # a hole: handled with its parent
        rings = [_ring_from_contour(contour) + offset]
        child = hier[idx][2]
        while child != -1:
            rings.append(_ring_from_contour(contours[child]) + offset)
            child = hier[child][0]
        parts.append((polygon_area(rings[0]), join_polygons(rings)))
    parts.sort(key=lambda item: -item[0])
    return [poly for _, poly in parts]


def mask_to_single_polygon(mask: np.ndarray) -> np.ndarray:
    """All parts and holes of ``mask`` as one ring (see :func:`join_polygons`); ``(0, 2)`` if empty."""
    return join_polygons(mask_to_polygons(mask))


def polygons_to_single_polygon(
    polygons: Sequence[np.ndarray], height: int, width: int
) -> tuple[np.ndarray, float]:
    """Express a union of polygons as one ring; return it with the mask IoU it keeps (1.0 = nothing lost).

    One polygon is returned unchanged. Several are bridged directly; if that loses pixels (parts that
    overlap, which even-odd filling would cut out) the ring is traced from the rasterized union instead,
    whichever keeps more.
    """
    valid = [np.asarray(p, np.float64).reshape(-1, 2) for p in polygons]
    valid = [p for p in valid if len(p) >= 3]
    if not valid:
        return np.zeros((0, 2), np.float64), 0.0
    if len(valid) == 1:
        return valid[0], 1.0
    target = polygons_to_rle(valid, height, width)
    joined = join_polygons(sorted(valid, key=lambda p: -polygon_area(p)))
    iou = mask_iou(target, polygons_to_rle([joined], height, width))
    if iou < 1.0:
        traced = mask_to_single_polygon(rle_to_mask(target))
        iou_traced = mask_iou(target, polygons_to_rle([traced], height, width))
        if iou_traced > iou:
            return traced, iou_traced
    return joined, iou


def rle_to_single_polygon(rle: dict) -> tuple[np.ndarray, float]:
    """An RLE mask as one ring (contours, holes and parts bridged) and the mask IoU that ring keeps."""
    mask = rle_to_mask(rle)
    ring = mask_to_single_polygon(mask)
    h, w = mask.shape
    if len(ring) < 3:
        return ring, 1.0 if not mask.any() else 0.0
    return ring, mask_iou(mask, rle_to_mask(polygons_to_rle([ring], h, w)))
