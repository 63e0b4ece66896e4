"""The video worked example (``examples/video/run.py``) end to end: its own server, three
real deployments, real HTTP through the gateway.

The script runs as a user would run it, with a small number of frames; the test reads
the JSON summary it writes. Asserts are on behaviour: every frame came out exactly once
with a correct record, no request failed, and each stage scaled on its own queue (the
slow decode stage scaled up, the cheap encode stage stayed at one replica, every stage's
``scale`` events are its own). Nothing is timed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelyard.testing.server_process import reap_orphans

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "video" / "run.py"


def test_the_video_example_moves_every_frame_and_scales_each_stage_on_its_own(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    summary_path = tmp_path / "summary.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    frames = 160
    try:
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--frames", str(frames), "--concurrency", "6",
             "--home", str(home), "--summary", str(summary_path),
             "--render", str(tmp_path / "k8s")],
            env=env, capture_output=True, text=True, timeout=280, check=False,
        )  # fmt: skip
    finally:
        if (home / "modelyard.db").exists():
            reap_orphans(home)  # only if the script's server died without stopping them
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    assert summary["frames_out"] == frames
    assert summary["missing"] == []
    assert summary["duplicates"] == []
    assert summary["bad_checksums"] == []
    assert summary["failures"] == []
    assert summary["detected"] == frames // 4  # every fourth frame holds the object
    stages = summary["stages"]
    assert set(stages) == {"decode", "detect", "encode"}
    for key, stage in stages.items():
        assert stage["deployment"] == f"video-{key}"
        assert all(e["deployment"] == f"video-{key}" for e in stage["scale_events"])
        assert stage["min_replicas"] <= stage["peak_desired"] <= stage["max_replicas"]
    # Each stage has its own queue at the gateway; the slow stage's is the long one...
    assert stages["decode"]["queue"]["samples"] > 0
    assert stages["decode"]["queue"]["mean"] > stages["encode"]["queue"]["mean"]
    # ...and it made that stage's autoscaler add replicas...
    assert stages["decode"]["peak_desired"] > 1
    assert stages["decode"]["replicas_started"] > 1
    assert any(e["desired"] > e["actual"] >= 1 for e in stages["decode"]["scale_events"])
    # ...while the cheap stage, at 16 requests per replica, never needed a second one.
    assert stages["encode"]["peak_desired"] == 1
    assert stages["encode"]["replicas_started"] == 1
    assert "frames out (all correct)" in done.stdout
    assert "decode" in done.stdout
    # The same graph rendered for Kubernetes: each stage scaled by KEDA on its own queue.
    for key, files in summary["rendered"].items():
        docs = [yaml.safe_load((tmp_path / "k8s" / key / f).read_text()) for f in files]
        scaled = [d for d in docs if d["kind"] == "ScaledObject"]
        assert [d["spec"]["scaleTargetRef"]["name"] for d in scaled] == [f"video-{key}-r1"]
        query = scaled[0]["spec"]["triggers"][0]["metadata"]["query"]
        assert f'app_kubernetes_io_name="video-{key}"' in query
