"""The TensorRT log tail (pure) and the error it builds."""

from __future__ import annotations

from typing import List, Tuple

import pytest

from edgeagent.backends.base import BackendError
from edgeagent.backends.trt_log import LogTail, TrtError, as_log_tail


def test_keeps_last_lines_at_level_or_worse() -> None:
    seen: List[Tuple[str, str]] = []
    tail = LogTail(keep=3, level="warning", sink=lambda s, m: seen.append((s, m)))
    tail.add(3, "info line")  # INFO = 3: dropped
    tail.add(2, "w1")
    tail.add("error", "e1\n")
    tail.add(0, "internal")
    tail.add(2, "w2")
    assert tail.lines() == ["[E] e1", "[F] internal", "[W] w2"]  # w1 fell off (keep=3)
    assert tail.lines(worst_first=True) == ["[F] internal", "[E] e1", "[W] w2"]
    assert tail.errors() == ["[E] e1", "[F] internal"]
    assert tail.counts == {"internal_error": 1, "error": 1, "warning": 2, "info": 1, "verbose": 0}
    assert [s for s, _ in seen] == ["warning", "error", "internal_error", "warning"]
    tail.clear()
    assert tail.lines() == [] and tail.counts["warning"] == 0


def test_error_carries_log_lines() -> None:
    tail = LogTail()
    tail.add(1, "[network.cpp::validate] Error Code 4: Internal Error (DLA does not support Resize)")
    err = tail.error("TensorRT could not build model.onnx")
    assert isinstance(err, TrtError) and isinstance(err, BackendError)
    assert err.log_lines == [
        "[E] [network.cpp::validate] Error Code 4: Internal Error (DLA does not support Resize)"
    ]
    assert str(err).splitlines()[0] == "TensorRT could not build model.onnx"
    assert "DLA does not support Resize" in str(err)
    assert str(TrtError("plain")) == "plain"


def test_bad_level() -> None:
    with pytest.raises(ValueError, match="log level"):
        LogTail(level="loud")


def test_as_log_tail_accepts_tail_callback_or_none() -> None:
    tail = LogTail()
    assert as_log_tail(tail) is tail
    assert isinstance(as_log_tail(None), LogTail)
    lines: List[str] = []
    forwarding = as_log_tail(lines.append)
    forwarding.add(2, "Tensor DataType is determined at build time")
    forwarding.add(4, "verbose detail")  # below the level: neither kept nor forwarded
    assert lines == ["[W] Tensor DataType is determined at build time"]
    assert forwarding.lines() == lines
    with pytest.raises(TypeError):
        as_log_tail(42)  # type: ignore[arg-type]
