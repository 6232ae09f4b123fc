"""The newcomer's script runs end to end (tiny settings) and reloads what it saved."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_dqn_cartpole_example_runs_saves_and_reloads(tmp_path):
    cmd = [
        sys.executable,
        str(ROOT / "examples" / "dqn_cartpole.py"),
        "--seeds", "2",
        "--steps", "2000",
        "--out", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "greedy returns identical" in done.stdout
    assert "seed" in done.stdout and "compile" in done.stdout
    for name in ("curve.png", "params.ckpt", "results.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["env_steps_per_seed"] == [2000, 2000]
    assert len(results["eval_return_per_seed"]) == 2


def test_bad_steps_flag_is_reported(tmp_path):
    cmd = [
        sys.executable,
        str(ROOT / "examples" / "dqn_cartpole.py"),
        "--steps",
        "1234",
        "--out",
        str(tmp_path),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    assert "--steps 1234" in done.stderr


def test_gridworld_dp_example(tmp_path):
    cmd = [sys.executable, str(ROOT / "examples" / "gridworld_dp.py"), "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "policy stable after" in done.stdout
    # Both methods reach V*, up to the evaluation's tolerance (1e-6 per sweep; allow 1e-4).
    gap = re.search(r"max \|V_policy_iteration - V_value_iteration\| = (\S+);", done.stdout)
    assert gap and float(gap.group(1)) <= 1e-4, done.stdout
    # By hand, V*(start) = 0.9^5 = 0.590: six moves around the traps, +1 on the sixth.
    after_vi = done.stdout.split("value iteration:")[1]
    assert re.search(r"\| S \S*\s+\+0\.590 \|", after_vi), after_vi
    assert (tmp_path / "value_iteration.png").stat().st_size > 0
    assert (tmp_path / "policy_iteration_1.png").stat().st_size > 0


def test_gridworld_td_example(tmp_path):
    cmd = [
        sys.executable,
        str(ROOT / "examples" / "gridworld_td.py"),
        "--seeds", "4",
        "--steps", "2000",
        "--out", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    for label in ("TD(0)", "MC first-visit", "SARSA", "Q-learning", "DP optimum 0.590"):
        assert label in done.stdout, label
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_pacman_examples(tmp_path):
    runs = [
        ("deep_sarsa_pacman.py", ["--seeds", "2", "--steps", "2000"], "episode.gif"),
        ("reinforce_pacman.py", ["--seeds", "2", "--steps", "3200"], "episode.gif"),
    ]
    for i, (script, flags, animation) in enumerate(runs):
        out = tmp_path / str(i)
        cmd = [sys.executable, str(ROOT / "examples" / script), *flags, "--out", str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "seed 1: greedy return" in done.stdout
        assert (out / "curve.png").stat().st_size > 0
        if animation:
            assert any(
                p.suffix in (".gif", ".png") and p.name != "curve.png" for p in out.iterdir()
            )


def test_actor_critic_examples(tmp_path):
    # A2C through the shared train-and-show helper (A3C's default path is the same helper),
    # and A3C's real-threads mode.
    runs = [
        ("a2c_cartpole.py", ["--seeds", "2", "--steps", "5120", "--out", str(tmp_path)]),
        ("a3c_cartpole.py", ["--threaded", "--rounds", "5"]),
    ]
    for script, flags in runs:
        cmd = [sys.executable, str(ROOT / "examples" / script), *flags]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        if script.startswith("a2c"):
            assert "seed 1: greedy return" in done.stdout
            assert (tmp_path / "curve.png").stat().st_size > 0
        else:
            assert "20 optimizer steps" in done.stdout
            assert "greedy return of the global parameters" in done.stdout
