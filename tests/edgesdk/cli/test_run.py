"""`edgesdk run`'s live status line."""

from __future__ import annotations

from edgesdk.cli.run import stats_line


def test_stats_line_fits_80_columns() -> None:
    event = {
        "fps": 123.4,
        "frames_out": 99999,
        "dropped": 999,
        "stage_ms": {"capture": 11.1, "preprocess": 22.2, "infer": 99.9, "postprocess": 44.4, "sink": 0.1},
    }
    text = stats_line(event).plain
    assert len(text) <= 80, text
    assert "infer 99.9" in text and "pre 22.2" in text and "999 dropped" in text
    assert "sink" not in text  # a near-zero sink stage is left out, a costly one is shown:
    assert "sink 5.0" in stats_line({**event, "stage_ms": {"sink": 5.0}}).plain
    assert "dropped" not in stats_line({**event, "dropped": 0}).plain  # files drop nothing: no noise
