"""Run folders, exact resume, summaries, and the command line."""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import serialization

import rljax
from rljax.core.keys import keys_to_data
from rljax.run import checkpoint, cli, folders, loop, registry

SEEDS = 2


@pytest.fixture(scope="module")
def small_dqn():
    # 12 chunks of 250 steps; no stopping rule, so every run has the same length.
    overrides = {"total_env_steps": "3000", "stop_return": "none", "eval_episodes": "4"}
    return registry.make_experiment("dqn", "CartPole-v1", overrides=overrides)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, small_dqn):
    """`small_dqn` trained without interruption: `(folder, summary)`."""
    folder = tmp_path_factory.mktemp("full")
    return folder, folders.run_in_folder(small_dqn, folder, SEEDS, checkpoint_every=4)


def _leaves(folder, exp):
    keys = jax.random.split(jax.random.key(0), SEEDS)
    init, _, _ = loop.jitted(exp.trainer)
    template = init(keys, rljax.tile_hparams(exp.hparams, SEEDS))
    state, chunk, _ = folders.load_run_state(folders.checkpoint_files(folder)[-1], template)
    return chunk, [np.asarray(x) for x in jax.tree.leaves(keys_to_data(state))]


def test_a_folder_saved_when_double_dqn_was_a_hyperparameter_loads_and_resumes(
    tmp_path, small_dqn, full_run
):
    # Older rljax kept DQN's `double_dqn` as a hyperparameter: config.json held it under
    # "hparams" and every checkpoint a leaf `...agent.hparams.double_dqn [S]`. Such a folder
    # still loads as a policy, and resumes to the uninterrupted run's end, bitwise.
    folder = tmp_path / "old"
    folders.run_in_folder(small_dqn, folder, SEEDS, checkpoint_every=4, stop_after=5)
    settings = json.loads((folder / "config.json").read_text())
    settings["hparams"]["double_dqn"] = settings["config"].pop("double_dqn")
    (folder / "config.json").write_text(json.dumps(settings))
    head = len(checkpoint.MAGIC) + 32
    for path in folders.checkpoint_files(folder):
        stored = serialization.msgpack_restore(path.read_bytes()[head:])
        (huber,) = [k for k in stored if k.endswith(".hparams.huber")]
        stored[huber.replace("huber", "double_dqn")] = np.zeros(SEEDS, bool)
        payload = serialization.msgpack_serialize(stored)
        path.write_bytes(checkpoint.MAGIC + hashlib.sha256(payload).digest() + payload)
    policy = rljax.load_policy(folder, seed=1)
    assert policy(np.zeros((3, 4), np.float32)).shape == (3,)
    folders.run_in_folder(small_dqn, folder, SEEDS, checkpoint_every=4, resume=True)
    chunk_a, a = _leaves(full_run[0], small_dqn)
    chunk_b, b = _leaves(folder, small_dqn)
    assert chunk_a == chunk_b == 12
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_resume_is_bitwise_identical_to_an_uninterrupted_run(tmp_path, small_dqn, full_run):
    full_folder, full = full_run
    half = folders.run_in_folder(
        small_dqn, tmp_path / "half", SEEDS, checkpoint_every=4, stop_after=5
    )
    assert half == {"interrupted": True, "chunk": 5, "folder": str(tmp_path / "half")}
    assert not (tmp_path / "half" / "summary.json").exists()
    rest = folders.run_in_folder(
        small_dqn, tmp_path / "half", SEEDS, checkpoint_every=4, resume=True
    )
    chunk_a, a = _leaves(full_folder, small_dqn)
    chunk_b, b = _leaves(tmp_path / "half", small_dqn)
    assert chunk_a == chunk_b == 12
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert full["eval_return"] == rest["eval_return"]
    rows = lambda d: list(csv.DictReader((d / "metrics.csv").open()))  # noqa: E731
    full_rows, half_rows = rows(full_folder), rows(tmp_path / "half")
    assert len(full_rows) == len(half_rows) == 12 * SEEDS
    strip = lambda r: {k: v for k, v in r.items() if k != "wall_seconds"}  # noqa: E731
    assert [strip(r) for r in full_rows] == [strip(r) for r in half_rows]
    # Only the newest checkpoints are kept (default keep=3): chunks 4, 8, 12.
    names = [p.name for p in folders.checkpoint_files(full_folder)]
    assert names == ["chunk_000004.ckpt", "chunk_000008.ckpt", "chunk_000012.ckpt"]


A3C_SMALL = {
    "total_env_steps": "96", "chunk_env_steps": "16", "num_envs": "4", "rollout_len": "4",
    "num_learners": "2", "hidden_sizes": "8", "sync_every": "3", "stop_return": "none",
}  # fmt: skip


@pytest.mark.parametrize(
    ("algo", "env_id", "overrides"),
    [
        # SARSA and Deep SARSA carry the rollout's last transition, awaiting its next action.
        ("sarsa", "GridWorld-v0", {"total_env_steps": "600", "chunk_env_steps": "100"}),
        ("deep_sarsa", "Pacman-v0", {"total_env_steps": "240", "chunk_env_steps": "40"}),
        # A3C's learners carry local copies of the parameters, stale with sync_every = 3.
        ("a3c", "CartPole-v1", A3C_SMALL),
    ],
)
def test_resume_restores_pending_transitions_and_local_copies(tmp_path, algo, env_id, overrides):
    # 6 chunks in one go against 3 + 3 resumed; each run stops (and saves) after its last
    # chunk without the final evaluation, which is not what is compared here.
    exp = registry.make_experiment(algo, env_id, overrides=overrides)
    run = functools.partial(folders.run_in_folder, exp, seeds=SEEDS, checkpoint_every=100)
    assert run(tmp_path / "full", stop_after=6)["chunk"] == 6
    half = run(tmp_path / "half", stop_after=3)
    assert half["interrupted"] and half["chunk"] == 3
    assert run(tmp_path / "half", resume=True, stop_after=3)["chunk"] == 6
    chunk_a, a = _leaves(tmp_path / "full", exp)
    chunk_b, b = _leaves(tmp_path / "half", exp)
    assert chunk_a == chunk_b == 6
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


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
    with pytest.raises(ValueError, match="holds an earlier run"):
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


def test_cli_train_eval_plot_list(tmp_path, capsys):
    # `python -m rljax` for real once; the other commands through the same `main`, in-process.
    run = tmp_path / "q"
    done = _cli("train", "q_learning", "GridWorld-v0", "--seeds", 3, "--steps", 4000, "--out", run)
    assert done.returncode == 0, done.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["num_seeds"] == 3 and summary["env_steps_per_seed"] == 4000

    def main(*args):
        code = cli.main([str(a) for a in args])
        out = capsys.readouterr()
        assert code == 0, out.err
        return out.out

    stdout = main("eval", run, "--episodes", 4)
    assert "seed 2:" in stdout and "mean over seeds" in stdout
    main("plot", run, run, "--out", tmp_path / "both.png")
    assert (tmp_path / "both.png").stat().st_size > 0
    stdout = main("list")
    for word in ("dqn", "sarsa", "value_iteration", "CartPole-v1", "GridWorld-v0", "learning_rate"):
        assert word in stdout
    main("train", "value_iteration", "GridWorld-v0", "--out", tmp_path / "vi")
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


def test_sigterm_stops_at_a_chunk_boundary_and_resumes_to_the_same_run(
    tmp_path, small_dqn, full_run
):
    # SIGTERM arrives while chunk 3 is reported (sent from the loop itself, so at a known
    # point): the run finishes chunk 4, saves it, stops; resumed, it ends bitwise equal to
    # the uninterrupted run.
    def terminate_at_chunk_3(progress):
        if progress.chunk == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    run = tmp_path / "dqn"
    stopped = folders.run_in_folder(
        small_dqn, run, SEEDS, checkpoint_every=100, on_chunk=terminate_at_chunk_3
    )
    assert stopped == {"interrupted": True, "chunk": 4, "folder": str(run)}
    assert [p.name for p in folders.checkpoint_files(run)] == ["chunk_000004.ckpt"]
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert int(rows[-1]["chunk"]) == 4 and len(rows) == 4 * SEEDS
    resumed = folders.run_in_folder(small_dqn, run, SEEDS, checkpoint_every=100, resume=True)
    (_, a), (_, b) = _leaves(full_run[0], small_dqn), _leaves(run, small_dqn)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert resumed["eval_return"] == full_run[1]["eval_return"]


def test_cli_reports_an_interrupted_run_with_the_resume_command(tmp_path, monkeypatch, capsys):
    # The command line's side of SIGTERM: the run stops after the chunk in progress, the
    # exit status is 130 and the message says how to resume.
    real = folders.run_in_folder

    def terminated_at_chunk_1(*args, **kwargs):
        report = kwargs.pop("on_chunk", None)

        def on_chunk(progress):
            if report is not None:
                report(progress)
            if progress.chunk == 1:
                os.kill(os.getpid(), signal.SIGTERM)

        return real(*args, **kwargs, on_chunk=on_chunk)

    monkeypatch.setattr(folders, "run_in_folder", terminated_at_chunk_1)
    run = tmp_path / "q"
    argv = ["train", "q_learning", "GridWorld-v0", "--steps", "4000", "--out", str(run)]
    assert cli.main(argv) == 130
    out = capsys.readouterr().out
    assert "interrupted after chunk 2" in out and "resume with" in out and "--resume" in out
    assert [p.name for p in folders.checkpoint_files(run)] == ["chunk_000002.ckpt"]
