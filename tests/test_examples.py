"""The newcomer's script runs end to end (tiny settings) and reloads what it saved.

`make demo`'s script runs as a real process; the other examples run in the test's process
(`runpy`, as `python examples/NAME.py` would run them, flags in `sys.argv`), which saves
starting Python and importing JAX once per script.
"""

from __future__ import annotations

import json
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]


class Done(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def example(monkeypatch, capsys):
    """`example("name.py", *flags)` runs examples/name.py as `__main__`, in-process."""

    def run(script: str, *flags) -> Done:
        path = ROOT / "examples" / script
        monkeypatch.setattr(sys, "argv", [str(path), *map(str, flags)])
        monkeypatch.syspath_prepend(str(path.parent))
        code, message = 0, ""
        try:
            runpy.run_path(str(path), run_name="__main__")
        except SystemExit as e:  # argparse errors, sys.exit(main()), sys.exit("message")
            if isinstance(e.code, str):
                code, message = 1, e.code + "\n"
            else:
                code = e.code or 0
        out = capsys.readouterr()
        return Done(code, out.out, out.err + message)

    return run


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


def test_bad_steps_flag_is_reported(tmp_path, example):
    done = example("dqn_cartpole.py", "--steps", "1234", "--out", tmp_path)
    assert done.returncode != 0
    assert "--steps 1234" in done.stderr


def test_gridworld_dp_example(tmp_path, example):
    done = example("gridworld_dp.py", "--out", tmp_path)
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


def test_gridworld_td_example(tmp_path, example):
    done = example("gridworld_td.py", "--seeds", "4", "--steps", "2000", "--out", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    for label in ("TD(0)", "MC first-visit", "SARSA", "Q-learning", "DP optimum 0.590"):
        assert label in done.stdout, label
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_pacman_examples(tmp_path, example):
    runs = [
        ("deep_sarsa_pacman.py", ["--seeds", "2", "--steps", "2000"], "episode.gif"),
        ("reinforce_pacman.py", ["--seeds", "2", "--steps", "3200"], "episode.gif"),
    ]
    for i, (script, flags, animation) in enumerate(runs):
        out = tmp_path / str(i)
        done = example(script, *flags, "--out", out)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "seed 1: greedy return" in done.stdout
        assert (out / "curve.png").stat().st_size > 0
        if animation:
            assert any(
                p.suffix in (".gif", ".png") and p.name != "curve.png" for p in out.iterdir()
            )


def test_actor_critic_examples(tmp_path, example):
    # A2C through the shared train-and-show helper (A3C's default path is the same helper),
    # and A3C's real-threads mode.
    runs = [
        ("a2c_cartpole.py", ["--seeds", "2", "--steps", "5120", "--out", str(tmp_path)]),
        ("a3c_cartpole.py", ["--threaded", "--rounds", "5"]),
    ]
    for script, flags in runs:
        done = example(script, *flags)
        assert done.returncode == 0, done.stdout + done.stderr
        if script.startswith("a2c"):
            assert "seed 1: greedy return" in done.stdout
            assert (tmp_path / "curve.png").stat().st_size > 0
        else:
            assert "20 optimizer steps" in done.stdout
            assert "greedy return of the global parameters" in done.stdout
