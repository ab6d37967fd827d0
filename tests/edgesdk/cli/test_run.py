"""`edgesdk run`'s live status line."""

from __future__ import annotations

from edgesdk.cli.run import stats_line


def test_stats_line_fits_80_columns() -> None:
    event = {
        "fps": 123.4,
        "frames_out": 123456,
        "dropped": 12345,
        "stage_ms": {"capture": 11.1, "preprocess": 22.2, "infer": 333.3, "postprocess": 44.4, "sink": 0.1},
    }
    text = stats_line(event).plain
    assert len(text) <= 80, text
    assert "infer 333.3" in text and "pre 22.2" in text and "sink" not in text  # a near-zero sink is left out
    assert "sink 5.0" in stats_line({**event, "stage_ms": {"sink": 5.0}}).plain  # a costly one is shown
