"""Pick a representative, diverse calibration set from a folder of images.

Steps (deterministic: files are visited in sorted path order and ties go to the earlier file):

1. **Scan** every file under the folder. Files without an image suffix
   (:data:`~edgesdk.quant.images.IMAGE_SUFFIXES`) are counted, never decoded (label files,
   READMEs). Empty, unreadable and truncated images (JPEG without an end marker after its
   last scan, PNG without ``IEND``) are dropped with the reason. Grey images are kept
   (converted to BGR as the camera path does) and counted; huge images are kept and
   decoded reduced (:mod:`edgesdk.quant.images`).
2. **Describe** each image: a 16x16 colour thumbnail (768 values in [0, 1]) and the square
   root of its 8x4x4 HSV histogram (128 values), each part scaled so its distances lie in
   [0, 1]; plus a 64-bit difference hash (9x8 grey thumbnail, horizontal gradient signs).
3. **Drop near-duplicates**: an image whose hash is within :data:`DUP_HASH_BITS` bits *and*
   whose thumbnail is within :data:`DUP_THUMB_RMS` (RMS, 0..1) of an earlier kept image.
4. **Greedy k-center** (farthest-first traversal) on the descriptors: start from the image
   nearest the mean descriptor, then repeatedly add the image farthest from everything
   chosen. This covers the distribution (every image is close to a chosen one) rather than
   sampling its dense middle. Cost O(N * count * 896).

Fewer than :data:`MIN_RECOMMENDED` chosen images give a warning (Ultralytics' INT8 export,
calibrated on 4 images, lost half its mAP).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgesdk.errors import ArtifactNotFound, DatasetError
from edgesdk.quant.images import (
    IMAGE_SUFFIXES,
    decode_image,
    header_size,
    is_truncated,
    read_bytes,
    reduction_for,
)

__all__ = ["DUP_HASH_BITS", "DUP_THUMB_RMS", "MIN_RECOMMENDED", "Selection", "describe", "select_images"]

log = logging.getLogger(__name__)

MIN_RECOMMENDED = 500
"""Below this many calibration images :func:`select_images` warns."""

DUP_HASH_BITS = 4
"""Difference hashes this close (of 64 bits) may be near-duplicates ..."""

DUP_THUMB_RMS = 0.05
"""... when their 16x16 thumbnails also differ by less than this RMS (pixel values 0..1)."""

THUMB = 16
_HSV_BINS = (8, 4, 4)
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint8)

ProgressFn = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each file."""


@dataclass
class Selection:
    """The calibration set and what happened to every file.

    Attributes:
        root: the folder scanned.
        chosen: chosen images in selection order (most central first, then farthest-first).
        scanned: files looked at; ``other_files`` of them had no image suffix.
        usable: images that decoded (before duplicate removal).
        dropped: (path, reason) for empty, unreadable and truncated images and duplicates.
        grayscale: usable images whose content is grey (kept, decoded as BGR).
        reduced: usable images above the huge-image limit, decoded reduced (kept).
        warnings: one line each, for the user.
        seconds: wall time (s).
    """

    root: Path
    chosen: list[Path]
    scanned: int = 0
    other_files: int = 0
    usable: int = 0
    dropped: list[tuple[Path, str]] = field(default_factory=list)
    grayscale: list[Path] = field(default_factory=list)
    reduced: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def relative(self, path: Path) -> str:
        """``path`` relative to the scanned folder (POSIX separators)."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def drop_counts(self) -> dict[str, int]:
        """Dropped files per reason kind (``duplicate``, ``unreadable``, ``truncated``, ``empty``)."""
        counts: dict[str, int] = {}
        for _, reason in self.dropped:
            kind = reason.split(" ", 1)[0]
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    def to_json(self) -> dict[str, Any]:
        """Plain data for summary.json and ``--json`` (paths relative to ``root``)."""
        return {
            "root": str(self.root),
            "chosen": [self.relative(p) for p in self.chosen],
            "count": len(self.chosen),
            "scanned": self.scanned,
            "other_files": self.other_files,
            "usable": self.usable,
            "dropped": [{"path": self.relative(p), "reason": r} for p, r in self.dropped],
            "dropped_counts": self.drop_counts(),
            "grayscale": [self.relative(p) for p in self.grayscale],
            "reduced": [self.relative(p) for p in self.reduced],
            "warnings": list(self.warnings),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Described:
    paths: list[Path] = field(default_factory=list)
    features: list[np.ndarray] = field(default_factory=list)
    thumbs: list[np.ndarray] = field(default_factory=list)
    hashes: list[np.ndarray] = field(default_factory=list)


def describe(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The selection descriptors of one image.

    Args:
        image: (h, w, 3) uint8 BGR.

    Returns:
        (feature (896,) float32, thumbnail (768,) float32 in [0, 1], hash (8,) uint8 = 64 bits).
    """
    import cv2

    thumb = cv2.resize(image, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(_HSV_BINS), [0, 180, 0, 256, 0, 256]).ravel()
    hist = np.sqrt(hist / max(float(hist.sum()), 1.0))
    grey = cv2.cvtColor(cv2.resize(image, (9, 8), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    bits = np.packbits((grey[:, 1:] > grey[:, :-1]).ravel())
    flat = thumb.ravel()
    feature = np.concatenate([flat / math.sqrt(flat.size), hist / math.sqrt(2.0)]).astype(np.float32)
    return feature, flat, bits


def _scan(root: Path) -> tuple[list[Path], int]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    return images, len(files) - len(images)


def _describe_all(paths: list[Path], selection: Selection, progress: ProgressFn | None) -> _Described:
    out = _Described()
    for done, path in enumerate(paths, start=1):
        data = read_bytes(path)
        if not data:
            selection.dropped.append((path, "empty file" if data is not None else "unreadable file"))
        elif is_truncated(data):
            selection.dropped.append((path, "truncated image (cut short)"))
        else:
            size = header_size(data)
            reduce = reduction_for(size)
            # descriptors need only a thumbnail: decode at 1/4 (1/8 for huge images) when large
            factor = 8 if reduce > 1 else (4 if size is not None and min(size) >= 256 else 1)
            image = decode_image(data, reduce=factor)
            if image is None:
                selection.dropped.append((path, "unreadable image (not decodable by OpenCV)"))
            else:
                if reduce > 1:
                    selection.reduced.append(path)
                if int(np.ptp(image, axis=2).max()) == 0:
                    selection.grayscale.append(path)
                feature, thumb, bits = describe(image)
                out.paths.append(path)
                out.features.append(feature)
                out.thumbs.append(thumb)
                out.hashes.append(bits)
        if progress is not None:
            progress(done, len(paths))
    return out


def _near_pairs(hashes: np.ndarray, thumbs: np.ndarray, block: int = 256) -> dict[int, list[int]]:
    """For each image i, the earlier images j < i it nearly duplicates."""
    pairs: dict[int, list[int]] = {}
    count = hashes.shape[0]
    for start in range(0, count, block):
        rows = slice(start, min(start + block, count))
        distance = _POPCOUNT[hashes[rows, None, :] ^ hashes[None, :, :]].sum(axis=2, dtype=np.int32)
        candidate_i, candidate_j = np.nonzero(distance <= DUP_HASH_BITS)
        for i, j in zip(candidate_i + start, candidate_j):
            if j >= i:
                continue
            rms = float(np.sqrt(np.mean((thumbs[i] - thumbs[j]) ** 2)))
            if rms < DUP_THUMB_RMS:
                pairs.setdefault(int(i), []).append(int(j))
    return pairs


def _dedupe(found: _Described, selection: Selection) -> list[int]:
    """Indices kept after dropping near-duplicates of earlier kept images."""
    if not found.paths:
        return []
    pairs = _near_pairs(np.stack(found.hashes), np.stack(found.thumbs))
    kept: list[int] = []
    kept_set: set[int] = set()
    for i in range(len(found.paths)):
        twin = next((j for j in pairs.get(i, []) if j in kept_set), None)
        if twin is None:
            kept.append(i)
            kept_set.add(i)
        else:
            selection.dropped.append(
                (found.paths[i], f"duplicate of {selection.relative(found.paths[twin])}")
            )
    return kept


def k_center(features: np.ndarray, count: int) -> list[int]:
    """Greedy k-center (farthest-first) indices into ``features`` (N, D); deterministic.

    Starts at the row nearest the mean, then adds the row farthest from all chosen rows
    (the first on ties), ``min(count, N)`` rows in all.
    """
    total = features.shape[0]
    if count >= total:
        centre = int(np.argmin(((features - features.mean(axis=0)) ** 2).sum(axis=1)))
        return [centre] + [i for i in range(total) if i != centre]
    x = features.astype(np.float64)
    chosen = [int(np.argmin(((x - x.mean(axis=0)) ** 2).sum(axis=1)))]
    nearest = ((x - x[chosen[0]]) ** 2).sum(axis=1)
    for _ in range(count - 1):
        nxt = int(np.argmax(nearest))
        chosen.append(nxt)
        np.minimum(nearest, ((x - x[nxt]) ** 2).sum(axis=1), out=nearest)
    return chosen


def select_images(folder: Path, count: int, *, progress: ProgressFn | None = None) -> Selection:
    """Choose up to ``count`` calibration images from ``folder`` (recursively).

    Args:
        folder: a folder of images (other files are counted and ignored).
        count: how many to choose (>= 1); all usable images when the folder has fewer.
        progress: called as ``progress(done, total)`` after each image file.

    Returns:
        The :class:`Selection` (chosen paths, dropped files with reasons, warnings).

    Raises:
        ArtifactNotFound: the folder does not exist.
        DatasetError: ``count`` < 1, or no usable image in the folder.
    """
    started = time.perf_counter()
    root = Path(folder)
    if not root.is_dir():
        raise ArtifactNotFound(
            f"image folder {root} does not exist",
            hint="give a folder of .jpg/.png images (searched recursively), e.g. data/coco128/images",
        )
    if count < 1:
        raise DatasetError(f"calibration image count must be >= 1, got {count}")
    paths, others = _scan(root)
    selection = Selection(root=root, chosen=[], scanned=len(paths) + others, other_files=others)
    found = _describe_all(paths, selection, progress)
    selection.usable = len(found.paths)
    if not found.paths:
        raise DatasetError(
            f"no usable images in {root} ({len(paths)} image files, {others} other files; "
            f"dropped: {selection.drop_counts() or 'none'})",
            hint=f"point --images at a folder of {', '.join(IMAGE_SUFFIXES)} files",
        )
    kept = _dedupe(found, selection)
    order = k_center(np.stack([found.features[i] for i in kept]), count)
    selection.chosen = [found.paths[kept[i]] for i in order]
    _warn(selection, count, len(kept))
    selection.seconds = time.perf_counter() - started
    return selection


def _warn(selection: Selection, count: int, distinct: int) -> None:
    chosen = len(selection.chosen)
    if distinct < count:
        selection.warnings.append(
            f"asked for {count} calibration images but {selection.root} has only {distinct} usable, "
            "distinct ones: using all of them"
        )
    if chosen < MIN_RECOMMENDED:
        selection.warnings.append(
            f"only {chosen} calibration images (fewer than {MIN_RECOMMENDED}): int8 thresholds from few "
            "images may not represent the deployment data (Ultralytics' INT8 export calibrated on 4 "
            "images and lost half its mAP); use 500-1000 representative images"
        )
    for line in selection.warnings:
        log.info("%s", line)  # surfaced to the user through Selection.warnings
