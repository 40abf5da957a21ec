"""Progress output: live bars on a terminal, one plain line per change elsewhere."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from trendflow.cli import main
from trendflow.progress import RunProgress, Steps


def _status(status: str, stage: str | None, progress: float,
            comps: dict[str, tuple[str, float]]) -> dict[str, Any]:
    return {"status": status, "stage": stage, "progress": progress, "eta_s": 12.0,
            "components": [{"name": n, "status": s, "progress": p}
                           for n, (s, p) in comps.items()]}


SEQUENCE = [
    _status("queued", None, 0.0, {"shot_detection": ("pending", 0), "loudness": ("pending", 0)}),
    _status("queued", None, 0.0, {"shot_detection": ("pending", 0), "loudness": ("pending", 0)}),
    _status("running", "components", 0.3,
            {"shot_detection": ("running", 0.5), "loudness": ("pending", 0)}),
    _status("running", "components", 0.4,
            {"shot_detection": ("running", 0.7), "loudness": ("pending", 0)}),
    _status("ok", "done", 1.0, {"shot_detection": ("ok", 1), "loudness": ("ok", 1)}),
]


def test_plain_progress_prints_one_line_per_change() -> None:
    out = io.StringIO()
    with RunProgress(out, rich=False) as p:
        for st in SEQUENCE:
            p.update(st)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3  # repeated states and progress-only moves print nothing
    assert "queued" in lines[0] and "running: shot_detection" in lines[1]
    assert "components 2/2" in lines[2] and "\x1b[" not in out.getvalue()


def test_rich_progress_draws_a_bar_per_component() -> None:
    out = io.StringIO()
    with RunProgress(out, rich=True) as p:
        for st in SEQUENCE:
            p.update(st)
    text = out.getvalue()
    assert "━" in text and "\x1b[" in text  # drawn bars, terminal control sequences
    assert "shot_detection" in text and "loudness" in text and "100%" in text


def test_steps_count_in_plain_lines() -> None:
    out = io.StringIO()
    with Steps(out, rich=False) as steps:
        steps.step("postgres: embedded")
        steps.count("building models", 2)
        steps.advance("text_encoder up_to_date")
        steps.advance("ocr built")
    assert out.getvalue().splitlines() == [
        "postgres: embedded", "building models: 0/2",
        "building models: 1/2 text_encoder up_to_date", "building models: 2/2 ocr built"]


def test_status_json_without_a_stack(capsys: Any) -> None:
    assert main(["status", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["pieces"][0]["piece"] == "stack"
    assert doc["pieces"][0]["state"] == "down"


def test_profile_option_lists_the_built_in_profiles(capsys: Any) -> None:
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    text = capsys.readouterr().out
    assert "fast (" in text and "full (" in text and "prediction (" in text
