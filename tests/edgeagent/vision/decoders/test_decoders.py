"""Golden cases for every decoder (data in ../golden/*.json, derived by hand there)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeagent.vision.decoders import DECODERS, decode

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
CASES = sorted(GOLDEN.glob("*.json"))


def _index(spec: list[Any]) -> tuple[Any, ...]:
    out: list[Any] = []
    for item in spec:
        if isinstance(item, str):
            start, _, stop = item.partition(":")
            out.append(slice(int(start) if start else None, int(stop) if stop else None))
        else:
            out.append(item)
    return tuple(out)


def _array(spec: dict[str, Any]) -> np.ndarray:
    if "values" in spec:
        return np.asarray(spec["values"], np.float32)
    arr = np.full(spec["shape"], spec.get("fill", 0.0), np.float32)
    for index, value in spec.get("set", []):
        arr[_index(index)] = value
    return arr


def _sorted(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    boxes = boxes.reshape(-1, 4)
    return np.lexsort((boxes[:, 1], boxes[:, 0], -np.round(scores, 4)))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden(path: Path) -> None:
    case = json.loads(path.read_text())
    outputs = {name: _array(spec) for name, spec in case["outputs"].items()}
    dets = decode(outputs, tuple(case["input_hw"]), case["params"])
    want = case["expected"]
    atol = case.get("atol", 1e-4)

    assert dets.boxes.dtype == np.float32 and dets.scores.dtype == np.float32
    assert dets.class_ids.dtype == np.int64
    want_boxes = np.asarray(want["boxes"], np.float32).reshape(-1, 4)
    want_scores = np.asarray(want["scores"], np.float32)
    assert len(dets) == len(want_scores), f"{len(dets)} detections: {dets}"
    got_order, want_order = _sorted(dets.boxes, dets.scores), _sorted(want_boxes, want_scores)
    np.testing.assert_allclose(dets.boxes[got_order], want_boxes[want_order], atol=atol)
    np.testing.assert_allclose(dets.scores[got_order], want_scores[want_order], atol=atol)
    np.testing.assert_array_equal(dets.class_ids[got_order], np.asarray(want["class_ids"])[want_order])
    if want["landmarks"] is None:
        assert dets.landmarks is None
    else:
        assert dets.landmarks is not None and dets.landmarks.dtype == np.float32
        want_lm = np.asarray(want["landmarks"], np.float32).reshape(-1, 5, 2)
        assert dets.landmarks.shape == want_lm.shape
        np.testing.assert_allclose(dets.landmarks[got_order], want_lm[want_order], atol=atol)


def test_every_decoder_has_a_hit_and_an_empty_case() -> None:
    hits: dict[str, int] = {}
    empties: dict[str, int] = {}
    for path in CASES:
        case = json.loads(path.read_text())
        name = case["params"]["decoder"]
        bucket = hits if case["expected"]["scores"] else empties
        bucket[name] = bucket.get(name, 0) + 1
    assert set(hits) == set(DECODERS) == set(empties)


def test_softmax_column_equals_the_full_softmax_and_survives_extreme_logits() -> None:
    from edgeagent.vision.decoders._common import softmax, softmax_column

    rng = np.random.default_rng(3)
    logits = rng.normal(0, 4, (1000, 3)).astype(np.float32)
    logits[0] = [1000.0, -1000.0, 0.0]  # exp overflow in the naive form
    logits[1] = [-1000.0, 1000.0, 0.0]
    for column in range(3):
        np.testing.assert_allclose(
            softmax_column(logits, column), softmax(logits, axis=1)[:, column], atol=1e-6
        )
    assert softmax_column(logits, 1)[0] == 0.0 and softmax_column(logits, 1)[1] == 1.0


def test_ssd_priors_are_cached_read_only_and_keyed_by_every_argument() -> None:
    from edgeagent.vision.decoders._common import _ssd_priors, ssd_priors

    a = ssd_priors((640, 640), [8, 16, 32], [[16, 32], [64, 128], [256, 512]])
    assert a is ssd_priors((640, 640), (8, 16, 32), ((16.0, 32.0), (64.0, 128.0), (256.0, 512.0)))
    assert not a.flags.writeable and a.shape == (16800, 4)
    np.testing.assert_array_equal(a, _ssd_priors((640, 640), [8, 16, 32], [[16, 32], [64, 128], [256, 512]]))
    b = ssd_priors((640, 640), [8, 16, 32], [[16, 32], [64, 128], [256, 512]], centre_by_grid=True)
    c = ssd_priors((320, 320), [8, 16, 32], [[16, 32], [64, 128], [256, 512]])
    assert b is not a and c.shape == (4200, 4)
