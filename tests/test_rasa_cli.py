"""Rasa's own checks: data validation and the end-to-end test stories."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.servers import ROOT, model_path


def rasa(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rasa", *args], cwd=cwd, capture_output=True, text=True)


def test_data_validates_without_warnings():
    result = rasa("data", "validate", "--fail-on-warnings")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_end_to_end_stories_pass(tmp_path):
    result = rasa("test", "core", "--model", model_path(), "--stories", "tests/test_stories.yml",
                  "--fail-on-prediction-errors", "--out", str(tmp_path))
    report = json.loads((tmp_path / "story_report.json").read_text())
    failed = (tmp_path / "failed_test_stories.yml").read_text()
    assert result.returncode == 0, failed
    assert report["conversation_accuracy"]["total"] >= 15
    assert report["conversation_accuracy"]["accuracy"] == 1.0, failed
