"""Metrics: names with the trendflow_ prefix, bounded labels, the one-hour success ratio."""

from __future__ import annotations

import pytest

from trendflow.metrics import Metrics, render_latest


def test_exposition_has_the_documented_names_and_a_sliding_success_ratio() -> None:
    m = Metrics(mirror_to_ray=False)
    m.run_finished("ok", now=0.0)
    m.run_finished("error", now=10.0)
    m.run_finished("ok", now=20.0)
    m.run_finished("cancelled", now=30.0)  # neither success nor failure
    assert m.run_success_ratio._value.get() == pytest.approx(2 / 3)
    m.run_finished("ok", now=3700.0)  # the first two fell out of the hour
    assert m.run_success_ratio._value.get() == pytest.approx(1.0)
    m.component_duration("shot_detection", 1.5)
    m.set_queue_length(7)
    m.error("video_too_long")
    m.error("some text an attacker chose")
    text = render_latest(m).decode()
    assert 'trendflow_runs_total{status="ok"} 3.0' in text
    assert "trendflow_queue_length 7.0" in text
    assert 'trendflow_component_duration_seconds_count{component="shot_detection"} 1.0' in text
    assert 'trendflow_errors_total{code="video_too_long"} 1.0' in text
    assert 'trendflow_errors_total{code="internal_error"} 1.0' in text  # never free text


def test_unbounded_labels_are_refused() -> None:
    m = Metrics(mirror_to_ray=False)
    with pytest.raises(ValueError):
        m.run_finished("maybe")
    with pytest.raises(ValueError):
        m.component_duration("3f2a-run-id/../x", 1.0)
