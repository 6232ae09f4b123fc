"""Run folders, exact resume, summaries, and the command line."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import rljax
from rljax.run import checkpoint, cli, folders, loop, registry

SEEDS = 2


@pytest.fixture(scope="module")
def small_dqn():
    # 12 chunks of 250 steps; no stopping rule, so every run has the same length.
    overrides = {"total_env_steps": "3000", "stop_return": "none", "eval_episodes": "4"}
    return registry.make_experiment("dqn", "CartPole-v1", overrides=overrides)


def _leaves(folder, exp):
    keys = jax.random.split(jax.random.key(0), SEEDS)
    init, _, _ = loop.jitted(exp.trainer)
    template = init(keys, rljax.tile_hparams(exp.hparams, SEEDS))
    state, chunk, _ = folders.load_run_state(folders.checkpoint_files(folder)[-1], template)
    return chunk, [np.asarray(x) for x in jax.tree.leaves(folders._keys_to_data(state))]


def test_resume_is_bitwise_identical_to_an_uninterrupted_run(tmp_path, small_dqn):
    full = folders.run_in_folder(small_dqn, tmp_path / "full", SEEDS, checkpoint_every=4)
    half = folders.run_in_folder(
        small_dqn, tmp_path / "half", SEEDS, checkpoint_every=4, stop_after=5
    )
    assert half == {"interrupted": True, "chunk": 5, "folder": str(tmp_path / "half")}
    assert not (tmp_path / "half" / "summary.json").exists()
    rest = folders.run_in_folder(
        small_dqn, tmp_path / "half", SEEDS, checkpoint_every=4, resume=True
    )
    chunk_a, a = _leaves(tmp_path / "full", small_dqn)
    chunk_b, b = _leaves(tmp_path / "half", small_dqn)
    assert chunk_a == chunk_b == 12
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert full["eval_return"] == rest["eval_return"]
    rows = lambda d: list(csv.DictReader((d / "metrics.csv").open()))  # noqa: E731
    full_rows, half_rows = rows(tmp_path / "full"), rows(tmp_path / "half")
    assert len(full_rows) == len(half_rows) == 12 * SEEDS
    strip = lambda r: {k: v for k, v in r.items() if k != "wall_seconds"}  # noqa: E731
    assert [strip(r) for r in full_rows] == [strip(r) for r in half_rows]
    # Only the newest checkpoints are kept (default keep=3): chunks 4, 8, 12.
    names = [p.name for p in folders.checkpoint_files(tmp_path / "full")]
    assert names == ["chunk_000004.ckpt", "chunk_000008.ckpt", "chunk_000012.ckpt"]


def test_summary_schema_and_values(tmp_path, small_dqn):
    summary = folders.run_in_folder(small_dqn, tmp_path, SEEDS, checkpoint_every=100)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == summary
    assert tuple(summary) == folders.SUMMARY_KEYS
    assert (summary["algo"], summary["env"], summary["num_seeds"]) == ("dqn", "CartPole-v1", 2)
    assert summary["env_steps_per_seed"] == 3000
    assert summary["train_seconds"] > 0 and summary["env_steps_per_second"] > 0
    ev = summary["eval_return"]
    assert set(ev) == {"mean", "min", "max", "per_seed"} and len(ev["per_seed"]) == SEEDS
    assert ev["min"] <= ev["mean"] <= ev["max"]
    assert {"jax", "flax", "gymnax", "rljax"} <= set(summary["versions"])
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["hparams"]["learning_rate"] == pytest.approx(1e-3)
    assert config["train"]["total_env_steps"] == 3000
    assert (tmp_path / "curve.png").stat().st_size > 0
    with (tmp_path / "metrics.csv").open() as f:
        header = next(csv.reader(f))
    assert header[:8] == list(folders.METRIC_COLUMNS)
    assert {"loss", "epsilon", "wall_seconds"} <= set(header)


def test_a_run_folder_is_not_overwritten_and_resume_checks_settings(tmp_path, small_dqn):
    folders.run_in_folder(small_dqn, tmp_path, SEEDS, stop_after=1)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        folders.run_in_folder(small_dqn, tmp_path, SEEDS)
    other = registry.make_experiment(
        "dqn", "CartPole-v1", overrides={"total_env_steps": "3000", "learning_rate": "3e-4"}
    )
    with pytest.raises(ValueError, match="other settings"):
        folders.run_in_folder(other, tmp_path, SEEDS, resume=True)


def test_corrupt_checkpoint_is_an_error_not_a_fresh_start(tmp_path, small_dqn):
    folders.run_in_folder(small_dqn, tmp_path, SEEDS, stop_after=2, checkpoint_every=1)
    newest = folders.checkpoint_files(tmp_path)[-1]
    newest.write_bytes(newest.read_bytes()[:-10])
    with pytest.raises(checkpoint.CheckpointError, match="truncated or corrupt"):
        folders.run_in_folder(small_dqn, tmp_path, SEEDS, resume=True)


def test_settings_errors_list_valid_names():
    with pytest.raises(ValueError, match=r"unknown algorithm 'ppo'; known algorithms: dqn"):
        registry.make_experiment("ppo")
    with pytest.raises(ValueError, match=r"unknown setting 'lr' for dqn; valid settings: learning"):
        registry.make_experiment("dqn", overrides={"lr": "1"})
    with pytest.raises(ValueError, match=r"DQNHParams\.gamma must lie in \[0\.0, 1\.0\], got 1\.5"):
        registry.make_experiment("dqn", overrides={"gamma": "1.5"})
    with pytest.raises(ValueError, match="cannot read 'many' as int"):
        registry.make_experiment("dqn", overrides={"batch_size": "many"})
    with pytest.raises(ValueError, match="unknown preset 'fast' for sarsa"):
        registry.make_experiment("sarsa", preset="fast")


def test_same_names_mean_the_same_thing_everywhere():
    for name in registry.ALGOS:
        settings = registry.settable(name)
        assert {"gamma", "num_envs"} <= set(settings), name
        if name in ("policy_iteration", "value_iteration"):  # planners learn nothing
            assert "learning_rate" not in settings
            continue
        assert "learning_rate" in settings, name
        if name not in ("reinforce", "a2c", "a3c"):  # epsilon-greedy agents, not policy gradients
            assert {"epsilon", "epsilon_end", "epsilon_decay"} <= set(settings), name
        assert all(meaning for _, meaning, _ in settings.values()), name


def _cli(*args, timeout=300):
    cmd = [sys.executable, "-m", "rljax", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def test_cli_train_eval_plot_list(tmp_path):
    run = tmp_path / "q"
    done = _cli("train", "q_learning", "GridWorld-v0", "--seeds", 3, "--steps", 4000, "--out", run)
    assert done.returncode == 0, done.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["num_seeds"] == 3 and summary["env_steps_per_seed"] == 4000
    done = _cli("eval", run, "--episodes", 4)
    assert done.returncode == 0, done.stderr
    assert "seed 2:" in done.stdout and "mean over seeds" in done.stdout
    done = _cli("plot", run, run, "--out", tmp_path / "both.png")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "both.png").stat().st_size > 0
    done = _cli("list")
    assert done.returncode == 0
    for word in ("dqn", "sarsa", "value_iteration", "CartPole-v1", "GridWorld-v0", "learning_rate"):
        assert word in done.stdout
    done = _cli("train", "value_iteration", "GridWorld-v0", "--out", tmp_path / "vi")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "vi" / "summary.json").read_text())["eval_return"]["mean"] == 1.0


def test_cli_errors_name_the_bad_input(tmp_path, capsys):
    # Raised before anything is compiled, so main() is called in-process.
    cases = [
        (("train", "ppo", "CartPole-v1"), "unknown algorithm 'ppo'"),
        (("train", "dqn", "CartPole-v9"), "unknown environment id 'CartPole-v9'"),
        (("train", "dqn", "CartPole-v1", "--set", "lr=1"), "unknown setting 'lr'"),
        (("train", "sarsa", "GridWorld-v0", "--set", "epsilon=2"), "epsilon must lie in"),
        (("eval", tmp_path), "not a run folder"),
    ]
    for args, message in cases:
        assert cli.main([str(a) for a in args]) == 2, args
        assert message in capsys.readouterr().err, args


def test_sigterm_leaves_a_resumable_run(tmp_path):
    run = tmp_path / "dqn"
    args = ["train", "dqn", "CartPole-v1", "--seeds", 1, "--steps", 100_000, "--out", run]
    cmd = [sys.executable, "-m", "rljax", *map(str, [*args, "--set", "stop_return=none"])]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 240
    for line in proc.stdout:  # wait until training is under way
        if line.startswith("[") or time.time() > deadline:
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "resume with --resume" in out
    files = folders.checkpoint_files(run)
    assert files, "no checkpoint after SIGTERM"
    exp = registry.make_experiment(
        "dqn", "CartPole-v1", overrides={"total_env_steps": "100000", "stop_return": "none"}
    )
    keys = jax.random.split(jax.random.key(0), 1)
    init, _, _ = loop.jitted(exp.trainer)
    _, chunk, _ = folders.load_run_state(files[-1], init(keys, rljax.tile_hparams(exp.hparams, 1)))
    assert 1 <= chunk < 400
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert int(rows[-1]["chunk"]) == chunk
