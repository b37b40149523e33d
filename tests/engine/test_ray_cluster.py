"""A node lost mid-run loses no job: a simulated two-node Ray cluster on this machine
(`ray.cluster_utils.Cluster`), its second node removed while jobs run on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

import clipmaker  # noqa: E402
from animated_previews.engine import load_manifest, run_batch  # noqa: E402
from animated_previews.engine.executors.ray import RayExecutor  # noqa: E402

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture
def two_nodes():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    second = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(TESTS)}})
    try:
        yield cluster, second
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_a_node_removed_mid_run_loses_no_job_and_repeats_none(two_nodes, tmp_path):
    from ray_stand_ins import Slow

    cluster, second = two_nodes
    clip = clipmaker.make_clip(tmp_path / "c.mp4", fps=25, frames=25, width=160, height=120)
    lines = [{"id": f"j{n}", "input": str(clip), "format": "gif", "fps": 5, "duration": 0.6} for n in range(6)]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    executor = RayExecutor(runner=Slow)
    results = []
    for result in run_batch(load_manifest(manifest), tmp_path / "out", executor=executor, device="cpu"):
        results.append(result)
        if len(results) == 1:  # a job runs on each node now: take the second node away
            cluster.remove_node(second, allow_graceful=False)
    assert sorted(r.id for r in results) == [f"j{n}" for n in range(6)]  # every line, once
    assert all(r.ok for r in results), [(r.id, r.error_message) for r in results if not r.ok]
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.suffix == ".gif") == [f"j{n}.gif" for n in range(6)]
    assert not [p for p in (tmp_path / "out").iterdir() if ".tmp" in p.name]
