"""The benchmark entry point and its results page (benchmarks/run.py, benchmarks/render.py).

The page and the README's results table are generated from the committed JSON: these tests
fail if anyone edits a figure by hand, or changes a JSON without re-rendering
(`python benchmarks/render.py --readme`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import render  # noqa: E402


def test_results_page_is_generated_from_the_committed_json():
    expected = render.render_markdown(render.load(render.RESULTS))
    assert render.PAGE.read_text() == expected, "run: python benchmarks/render.py --readme"


def test_readme_results_table_is_generated():
    block = render.readme_block(render.load(render.RESULTS))
    assert block in (ROOT / "README.md").read_text(), "run: python benchmarks/render.py --readme"


def test_render_is_deterministic_and_copes_with_missing_fields():
    results = {
        "dqn_cartpole": {"command": "python benchmarks/dqn_cartpole.py"},
        "gridworld": {"q_learning_by_seeds": {"16384": {"agent_steps_per_second": 1e7,
                                                         "over_numpy": 150.0}}},
        "mystery": {"figure": 1.5, "nested": {"count": 3}},
    }  # fmt: skip
    page = render.render_markdown(results)
    assert page == render.render_markdown(json.loads(json.dumps(results)))
    assert "date not recorded" in page
    assert "- nested.count: 3" in page
    status = {t.text: t.status for t in render.targets(results)}
    assert status["tabular Q-learning >= 100x plain NumPy at 16,384 seeds"] == "met"
    assert status["DQN CartPole-v1: 8 seeds, every one greedy >= 475 (32 episodes)"] == (
        "not measured"
    )
    assert "Stable-Baselines3" in render.headline_table(results)


def test_targets_are_computed_not_copied():
    batch = {"seeds": 8, "seeds_at_least_475": 7, "wall_seconds": 40.0}
    rejax = {"seeds": 8, "jax_version": "9.9", "compile_seconds": 10.0, "train_seconds": 150.0}
    results = {
        "dqn_cartpole": {
            "versions": {"jax": "9.9"},
            "default_8_seeds": batch,
            "peers": {"rejax_8_seeds": rejax, "sb3_dqn": {"seconds_per_solved_seed": 700.0}},
        },
        "gridworld": {
            "quick": True,
            "q_learning_by_seeds": {"16384": {"agent_steps_per_second": 1, "over_numpy": 500.0}},
        },
    }
    t = {x.text.split(":")[0]: x for x in render.targets(results)}
    assert t["DQN CartPole-v1"].status == "not met"  # 7 of 8
    rejax_target = next(x for x in t.values() if "rejax" in x.text)
    assert rejax_target.status == "met"  # 40 s <= 160 s / 4
    assert t["DQN"].status == "met"  # 700 s / (40 s / 7) >= 20
    assert "quick run" in t["tabular Q-learning >= 100x plain NumPy at 16,384 seeds"].figure
    results["dqn_cartpole"]["peers"]["rejax_8_seeds"]["jax_version"] = "0.4.35"
    rejax_target = next(x for x in render.targets(results) if "rejax" in x.text)
    assert rejax_target.status == "not measured"  # another jax: not comparable


@pytest.mark.slow
def test_entry_point_runs_a_benchmark_end_to_end(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "smoke", "--results", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "smoke.json").read_text())
    meta = data["meta"]
    assert meta["command"].startswith("python benchmarks/smoke.py --out ")
    assert meta["machine"]["cpus"] and meta["machine"]["device_kind"]
    assert set(render.LIBRARIES) <= set(meta["versions"])
    assert data["over_numpy"] > 0
    page = (tmp_path / "RESULTS.md").read_text()
    assert page == render.render_markdown(render.load(tmp_path))
    assert f"Command: `{meta['command']}`" in page
