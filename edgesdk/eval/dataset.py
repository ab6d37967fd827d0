"""Labelled image folders in YOLO format, and their COCO ground-truth form.

Layout (Ultralytics style; what ``../shared/data`` holds)::

    DIR/images/[<split>/]*.jpg      DIR/labels/[<split>/]*.txt      DIR/data.yaml (optional: names)

or images and labels in one folder (``x.jpg`` beside ``x.txt``). A label line is
``class cx cy w h``, all normalised to 0..1 by the image size. A missing label file means an
image with no objects: it still counts (its detections are false positives).

Rules chosen here (documented for ``edgesdk eval``):

- An unreadable image is an error naming the file, not a skip: a silently dropped image
  would change the mAP without anyone noticing.
- ``annotations.json`` beside the images with ``original_width``/``original_height`` per
  image (the WIDER FACE subset, stretched to 416x416 by its source) restores the natural
  aspect before inference: each file is resized to ``(W, round(W * oh / ow))``. The labels
  are normalised, so they stay exact.
- ``min_size``: ground-truth boxes whose shorter side (pixels of the evaluated image) is
  below it are marked ``iscrowd`` (pycocotools "ignore"): they are not counted as misses,
  and detections that fall on them (intersection / detection area >= the IoU threshold)
  are not counted as false positives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from edgesdk.errors import ArtifactNotFound, DatasetError

__all__ = [
    "IMAGE_SUFFIXES",
    "CATEGORY_ID_OFFSET",
    "Dataset",
    "ImageRecord",
    "load_dataset",
    "to_coco_gt",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
CATEGORY_ID_OFFSET = 1  # COCO ids start at 1: category_id = class index + 1, image_id = position + 1
ASPECT_FILE = "annotations.json"
SINGLE_CLASS_DEFAULT_NAME = "object"


@dataclass(frozen=True)
class ImageRecord:
    """One image and its ground truth.

    Attributes:
        image_id: COCO image id (1-based position in the dataset).
        path: the image file.
        width: width in pixels of the image as evaluated (after ``resize_to``).
        height: height in pixels of the image as evaluated.
        boxes: (N, 4) float32 xyxy in pixels of the evaluated image.
        class_ids: (N,) int64 class indices (all 0 for a single-class dataset).
        ignore: (N,) bool; True for boxes below ``min_size`` (evaluated as ``iscrowd``).
        resize_to: ``(width, height)`` to resize the file to before inference, or None.
    """

    image_id: int
    path: Path
    width: int
    height: int
    boxes: np.ndarray
    class_ids: np.ndarray
    ignore: np.ndarray
    resize_to: Optional[tuple[int, int]] = None


@dataclass(frozen=True)
class Dataset:
    """A labelled image folder, loaded.

    Attributes:
        root: the folder given to :func:`load_dataset`.
        images: one record per image, sorted by path.
        names: class names (index = class id).
        single_class: every label was mapped to class 0.
        min_size: boxes with a shorter side below this (pixels) are ignored.
        aspect_restored: images are resized to their natural aspect (``annotations.json``).
        missing_labels: images without a label file (counted as images with no objects).
    """

    root: Path
    images: tuple[ImageRecord, ...]
    names: tuple[str, ...]
    single_class: bool = False
    min_size: float = 0.0
    aspect_restored: bool = False
    missing_labels: int = 0

    @property
    def num_boxes(self) -> int:
        """Ground-truth boxes, ignored ones included."""
        return int(sum(len(r.boxes) for r in self.images))

    @property
    def num_ignored(self) -> int:
        """Ground-truth boxes below ``min_size``."""
        return int(sum(int(r.ignore.sum()) for r in self.images))


# --------------------------------------------------------------------------- files


def _image_dir(root: Path) -> Path:
    images = root / "images"
    return images if images.is_dir() else root


def _find_images(image_dir: Path) -> list[Path]:
    return sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _label_path(image: Path, image_dir: Path, root: Path) -> Optional[Path]:
    """The label file for ``image``: ``labels/`` mirroring ``images/``, the last ``images``
    path component swapped for ``labels``, or a ``.txt`` beside the image."""
    candidates = []
    if image_dir != root:
        candidates.append(root / "labels" / image.relative_to(image_dir).with_suffix(".txt"))
    parts = list(image.parts)
    if "images" in parts:
        index = len(parts) - 1 - parts[::-1].index("images")
        parts[index] = "labels"
        candidates.append(Path(*parts).with_suffix(".txt"))
    candidates.append(image.with_suffix(".txt"))
    return next((c for c in candidates if c.is_file()), None)


def _read_names(root: Path) -> Optional[list[str]]:
    """Class names from ``data.yaml`` (a list, or a mapping id -> name), or None without one."""
    path = root / "data.yaml"
    if not path.is_file():
        return None
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise DatasetError(f"cannot read {path}: {str(err).splitlines()[0]}") from err
    names = data.get("names") if isinstance(data, dict) else None
    if names is None:
        return None
    if isinstance(names, dict):
        try:
            keys = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise DatasetError(f"{path}: 'names' keys must be class ids 0, 1, ...") from None
        if keys != list(range(len(keys))):
            raise DatasetError(f"{path}: 'names' ids must be 0..{len(keys) - 1} without gaps")
        return [str(names[k] if k in names else names[str(k)]) for k in keys]
    if isinstance(names, list):
        return [str(n) for n in names]
    raise DatasetError(f"{path}: 'names' must be a list or a mapping id -> name")


def _read_aspect(root: Path) -> dict[Path, tuple[int, int]]:
    """``annotations.json``: resolved image path -> (original_width, original_height)."""
    path = root / ASPECT_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        out = {}
        for item in data["images"]:
            size = (int(item["original_width"]), int(item["original_height"]))
            if min(size) <= 0:
                raise ValueError(f"non-positive original size for {item['file']}")
            out[(root / item["file"]).resolve()] = size
        return out
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DatasetError(
            f"{path}: expected {{'images': [{{'file', 'original_width', 'original_height'}}, ...]}}: {err}"
        ) from err


def _read_size(image: Path) -> tuple[int, int]:
    """(width, height) of an image file, decoding it (which also proves it is readable)."""
    import cv2

    data = np.fromfile(str(image), np.uint8) if image.stat().st_size else np.zeros(0, np.uint8)
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if decoded is None:
        raise DatasetError(
            f"cannot decode image {image}",
            hint="remove or replace the file (it is empty, corrupt or not an image)",
        )
    return int(decoded.shape[1]), int(decoded.shape[0])


def _parse_labels(path: Path, num_classes: Optional[int]) -> tuple[np.ndarray, np.ndarray]:
    """Parse one YOLO label file into (class ids (N,), normalised cx cy w h (N, 4))."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"cannot read label file {path}: {err}") from err
    ids: list[int] = []
    rows: list[list[float]] = []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{number}"
        try:
            if len(fields) != 5:
                raise ValueError(f"expected 5 fields 'class cx cy w h', got {len(fields)}")
            cls, values = int(fields[0]), [float(v) for v in fields[1:]]
        except ValueError as err:
            raise DatasetError(f"{where}: bad label line {line.strip()!r}: {err}") from None
        if cls < 0 or (num_classes is not None and cls >= num_classes):
            limit = f"0..{num_classes - 1} (data.yaml names)" if num_classes is not None else ">= 0"
            raise DatasetError(f"{where}: class id {cls} is outside {limit}")
        if not all(np.isfinite(values)) or values[2] <= 0 or values[3] <= 0:
            raise DatasetError(f"{where}: box width and height must be positive finite numbers")
        ids.append(cls)
        rows.append(values)
    return np.asarray(ids, np.int64), np.asarray(rows, np.float32).reshape(-1, 4)


# --------------------------------------------------------------------------- loading


def _to_pixels(cxcywh: np.ndarray, width: int, height: int) -> np.ndarray:
    """Normalised cx cy w h (N, 4) -> xyxy pixels (N, 4) clipped to the image."""
    scale = np.array([width, height, width, height], np.float32)
    cx, cy, w, h = (cxcywh * scale).T
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return np.clip(boxes, 0, scale).astype(np.float32)


def _evaluated_size(
    image: Path, aspect: dict[Path, tuple[int, int]]
) -> tuple[int, int, Optional[tuple[int, int]]]:
    width, height = _read_size(image)
    original = aspect.get(image.resolve())
    if original is None:
        return width, height, None
    restored = (width, max(1, int(width * original[1] / original[0] + 0.5)))
    return restored[0], restored[1], restored


def _check_root(root: Path) -> Path:
    if not root.exists():
        raise ArtifactNotFound(
            f"dataset folder {root} does not exist", hint="--data takes a folder holding images/ and labels/"
        )
    if not root.is_dir():
        raise DatasetError(
            f"{root} is not a folder", hint="--data takes a folder holding images/ and labels/"
        )
    return root


def load_dataset(
    data_dir: Path, *, single_class: bool = False, min_size: float = 0, limit: Optional[int] = None
) -> Dataset:
    """Load a YOLO-format labelled image folder (see the module docstring for the layout).

    Every image is decoded once here, to learn its size and to fail before a long run.

    Args:
        data_dir: the dataset folder.
        single_class: map every label to class 0 (face datasets).
        min_size: ground-truth boxes whose shorter side is below this many pixels (of the
            evaluated image) are marked ignore (``iscrowd``); 0 keeps every box.
        limit: use only the first ``limit`` images (sorted by path).

    Returns:
        The :class:`Dataset`, boxes in xyxy pixels of each evaluated image.

    Raises:
        ArtifactNotFound: ``data_dir`` does not exist.
        DatasetError: no images, an unreadable image, no label files at all, no boxes at all,
            a malformed label line (named by file and line), or a malformed data.yaml /
            annotations.json.
    """
    root = _check_root(Path(data_dir))
    if min_size < 0 or (limit is not None and limit < 1):
        raise DatasetError(f"min_size must be >= 0 and limit >= 1 (got {min_size}, {limit})")
    image_dir = _image_dir(root)
    paths = _find_images(image_dir)
    if not paths:
        raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {image_dir}")
    paths = paths[:limit] if limit is not None else paths
    names = _read_names(root)
    aspect = _read_aspect(root)
    records, missing = [], 0
    for index, image in enumerate(paths):
        label = _label_path(image, image_dir, root)
        missing += label is None
        ids, cxcywh = _parse_labels(label, len(names) if names else None) if label else _no_labels()
        width, height, resize_to = _evaluated_size(image, aspect)
        boxes = _to_pixels(cxcywh, width, height)
        ignore = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) < min_size
        if single_class:
            ids = np.zeros_like(ids)
        records.append(ImageRecord(index + 1, image, width, height, boxes, ids, ignore, resize_to))
    if missing == len(paths):
        raise DatasetError(
            f"no label files for the {len(paths)} images under {image_dir}",
            hint="eval needs YOLO labels: labels/<same path as under images/>.txt, lines 'class cx cy w h'",
        )
    return _finish(root, records, names, single_class, min_size, bool(aspect), missing)


def _no_labels() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0,), np.int64), np.zeros((0, 4), np.float32)


def _finish(
    root: Path,
    records: list[ImageRecord],
    names: Optional[list[str]],
    single_class: bool,
    min_size: float,
    aspect_restored: bool,
    missing: int,
) -> Dataset:
    if not any(len(r.boxes) for r in records):
        raise DatasetError(f"the label files under {root} hold no boxes", hint="mAP needs ground-truth boxes")
    if single_class:
        names = [names[0]] if names and len(names) == 1 else [SINGLE_CLASS_DEFAULT_NAME]
    elif names is None:
        top = max(int(r.class_ids.max()) for r in records if len(r.class_ids))
        names = [str(i) for i in range(top + 1)]
    return Dataset(
        root, tuple(records), tuple(names), single_class, float(min_size), aspect_restored, missing
    )


# --------------------------------------------------------------------------- COCO form


def to_coco_gt(dataset: Dataset) -> dict[str, Any]:
    """The dataset as a COCO ground-truth dict (what ``pycocotools.coco.COCO`` indexes).

    Image ids are ``ImageRecord.image_id``; category ids are class index +
    :data:`CATEGORY_ID_OFFSET`; ``bbox`` is ``[x, y, w, h]`` in pixels of the evaluated
    image; ``area`` is ``w * h``; ``iscrowd`` is 1 for boxes below ``min_size``.
    """
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for record in dataset.images:
        images.append(
            {
                "id": record.image_id,
                "file_name": str(record.path),
                "width": record.width,
                "height": record.height,
            }
        )
        for box, cls, ignore in zip(record.boxes.tolist(), record.class_ids.tolist(), record.ignore.tolist()):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": record.image_id,
                    "category_id": int(cls) + CATEGORY_ID_OFFSET,
                    "bbox": [box[0], box[1], w, h],
                    "area": w * h,
                    "iscrowd": int(ignore),
                }
            )
    categories = [{"id": i + CATEGORY_ID_OFFSET, "name": name} for i, name in enumerate(dataset.names)]
    return {"images": images, "annotations": annotations, "categories": categories}
