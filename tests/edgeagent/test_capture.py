"""Source classes: the backoff schedule, policies, and what a source reports by default."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import pytest

from edgeagent.capture import CaptureSource, Frame, Reconnect, SourceError


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = Reconnect(retries=6, initial_s=0.5, max_s=4.0, factor=2.0)
    assert [policy.delay(k) for k in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_default_policy_is_bounded() -> None:
    policy = Reconnect()
    total = sum(policy.delay(k) for k in range(1, policy.retries + 1))
    assert 0 < policy.retries <= 10 and total < 60.0


def test_frame_is_a_named_tuple() -> None:
    frame = Frame(3, None, 1.5)  # type: ignore[arg-type]
    index, image, t, name = frame
    assert (frame.index, index, t, name) == (3, 3, 1.5, None)  # name: image sources only
    assert Frame(0, None, 0.0, "bus.jpg").name == "bus.jpg"  # type: ignore[arg-type]


def test_bad_give_up_policy(data_dir: Path) -> None:
    path = str(data_dir / "videos" / "face-demographics-walking.gif")
    with pytest.raises(SourceError, match="'end' or 'raise'"):
        CaptureSource(path, lambda: cv2.VideoCapture(path), live=False, give_up="crash")


def test_events_are_logged_by_default(
    data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = data_dir / "videos" / "head-pose-face-detection-female.gif"
    path = tmp_path / "clip.gif"
    path.write_bytes(src.read_bytes())
    source = CaptureSource(str(path), lambda: cv2.VideoCapture(str(path)), live=False, path=str(path))
    with caplog.at_level(logging.WARNING, logger="edgeagent.capture"):
        for frame in source:
            if frame.index == 0:
                path.unlink()
    assert any("removed" in r.getMessage() for r in caplog.records)
