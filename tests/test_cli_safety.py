"""From a run folder to a policy, safely: no silent mixing of runs, one-line errors,
extending and resuming, a policy to load and watch (issue 13)."""

from __future__ import annotations

import errno
import json
import os
import shlex

import jax
import numpy as np
import pytest

import rljax
from rljax.run import cli, folders, registry

Q_ARGS = ["train", "q_learning", "GridWorld-v0", "--seeds", "2", "--steps", "2000"]


def _main(*args) -> int:
    return cli.main([str(a) for a in args])


@pytest.fixture(scope="module")
def q_run(tmp_path_factory):
    """A finished 2-seed Q-learning run folder (shared: tests copy it before changing it)."""
    run = tmp_path_factory.mktemp("runs") / "q"
    assert _main(*Q_ARGS, "--out", run) == 0
    return run


def test_an_earlier_run_is_never_mixed_into(q_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "q"
    shutil.copytree(q_run, run)
    before = (run / "metrics.csv").read_text()
    capsys.readouterr()
    assert _main(*Q_ARGS, "--out", run) == 2
    err = capsys.readouterr().err
    assert "holds an earlier run" in err and "--resume" in err and "--force" in err
    assert len(err.strip().splitlines()) == 1
    assert (run / "metrics.csv").read_text() == before  # untouched
    # --force moves the old run aside, never deletes it, and trains afresh.
    assert _main(*Q_ARGS, "--out", run, "--force") == 0
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("q.old-")]
    assert len(aside) == 1 and (aside[0] / "metrics.csv").read_text() == before
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 2  # header + 2 chunks x 2 seeds: nothing appended to old rows


def test_resume_names_each_differing_setting(q_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "q"
    shutil.copytree(q_run, run)
    capsys.readouterr()
    assert _main(*Q_ARGS, "--out", run, "--resume", "--set", "gamma=0.5") == 2
    err = capsys.readouterr().err
    assert "hparams.gamma: 0.9 in the folder, 0.5 now" in err, err


def test_resume_with_more_steps_extends_a_finished_run(tmp_path):
    # 2,000 steps then 2,000 more equals 4,000 from the start (constant-step schedules).
    args = ["train", "q_learning", "GridWorld-v0", "--seeds", "2", "--set", "epsilon_decay=1"]
    assert _main(*args, "--steps", 2000, "--out", tmp_path / "a") == 0
    assert _main(*args, "--steps", 4000, "--out", tmp_path / "a", "--resume") == 0
    assert _main(*args, "--steps", 4000, "--out", tmp_path / "b") == 0
    _, a, chunk_a, _ = folders.load_run(tmp_path / "a")
    _, b, chunk_b, _ = folders.load_run(tmp_path / "b")
    assert chunk_a == chunk_b == 4
    np.testing.assert_array_equal(a.agent.params, b.agent.params)
    assert (
        json.loads((tmp_path / "a" / "config.json").read_text())["train"]["total_env_steps"] == 4000
    )


def test_interrupted_while_compiling_then_retrain_or_resume(tmp_path, monkeypatch, capsys):
    real = folders.jitted

    def interrupted(trainer, sharding=None):
        raise KeyboardInterrupt

    run = tmp_path / "q"
    monkeypatch.setattr(folders, "jitted", interrupted)
    assert _main(*Q_ARGS, "--out", run) == 130
    out = capsys.readouterr().out
    assert "compiling ..." in out and "interrupted before the first checkpoint" in out
    monkeypatch.setattr(folders, "jitted", real)
    assert _main(*Q_ARGS, "--out", run) == 0  # no manual clean-up needed
    monkeypatch.setattr(folders, "jitted", interrupted)
    assert _main(*Q_ARGS, "--out", tmp_path / "r") == 130
    monkeypatch.setattr(folders, "jitted", real)
    assert _main(*Q_ARGS, "--out", tmp_path / "r", "--resume") == 0  # resume starts afresh


def test_the_interrupt_message_is_a_command_that_resumes(tmp_path, monkeypatch, capsys):
    run = tmp_path / "q"
    args = [*Q_ARGS, "--out", str(run), "--set", "epsilon=0.3"]
    monkeypatch.setattr(
        cli.folders, "run_in_folder", lambda *a, **k: {"interrupted": True, "chunk": 1}
    )
    assert cli.main(args) == 130
    command = capsys.readouterr().out.strip().splitlines()[-1].strip()
    words = shlex.split(command)
    assert words[1:3] == ["-m", "rljax"] and words[-1] == "--resume"
    assert words[3:-1] == args  # pasted, it runs the same training with --resume


def test_filesystem_problems_are_one_line_and_damage_nothing(q_run, tmp_path, monkeypatch, capsys):
    import shutil

    a_file = tmp_path / "file"
    a_file.write_text("x")
    capsys.readouterr()
    assert _main(*Q_ARGS, "--out", a_file) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file" in err
    assert _main(*Q_ARGS, "--out", a_file / "under") == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert _main("plot", q_run, "--out", tmp_path / "missing" / "c.png") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    # A full disk while a checkpoint is written: one line, and the kept checkpoints and
    # metrics are intact (the write is atomic), so the run resumes.
    run = tmp_path / "q"
    shutil.copytree(q_run, run)
    kept = {p.name: p.read_bytes() for p in folders.checkpoint_files(run)}

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    args = ["train", "q_learning", "GridWorld-v0", "--seeds", "2", "--steps", "4000"]
    assert _main(*args, "--out", run, "--resume") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left" in err
    monkeypatch.undo()
    for p in folders.checkpoint_files(run):
        if p.name in kept:
            assert p.read_bytes() == kept[p.name]
    assert not list((run / "checkpoints").glob(".*.tmp"))
    assert _main(*args, "--out", run, "--resume") == 0


def test_flags_are_named_in_errors(q_run, capsys):
    cases = [
        (("eval", q_run, "--episodes", 0), "--episodes must be >= 1, got 0"),
        (("eval", q_run, "--seed", 5), "--seed 5:"),
        (("eval", q_run, "--checkpoint", 99), "--checkpoint 99:"),
        ((*Q_ARGS, "--set", "total_env_steps=100"), "--steps and --set total_env_steps"),
        (("train", "value_iteration", "GridWorld-v0", "--preset", "anything"), "unknown preset"),
        (("list", "ppo"), "unknown algorithm 'ppo'"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert _main(*args) == 2, args
        assert message in capsys.readouterr().err, args


def test_eval_one_seed_at_a_checkpoint_and_list_filters(q_run, capsys):
    assert _main("eval", q_run, "--seed", 1, "--checkpoint", 2, "--episodes", 2) == 0
    out = capsys.readouterr().out
    assert "chunk_000002" in out and "seed 1:" in out and "seed 0:" not in out
    assert _main("list", "sarsa") == 0
    out = capsys.readouterr().out
    assert "sarsa settings" in out and "dqn" not in out
    assert _main("list", "--envs") == 0
    assert "CartPole-v1" in capsys.readouterr().out.splitlines()


def test_every_train_flag_has_help():
    train = cli.parser()._subparsers._group_actions[0].choices["train"]
    for action in train._actions:
        if action.dest != "help":
            assert action.help, action.dest


def test_prediction_shows_its_value_table(tmp_path, capsys):
    assert (
        _main("train", "td", "GridWorld-v0", "--seeds", 1, "--steps", 500, "--out", tmp_path / "td")
        == 0
    )
    out = capsys.readouterr().out
    assert "greedy return" not in out and "value table" in out
    assert (tmp_path / "td" / "values.png").stat().st_size > 0


def test_load_policy_plays_an_episode(q_run):
    policy = rljax.load_policy(q_run, seed=1)
    env, params = policy.env, policy.env_params
    obs, state = env.reset(jax.random.key(0), params)
    act = jax.jit(policy)
    for _ in range(3):
        action = act(obs[None])[0]
        obs, state, *_ = env.step(jax.random.key(1), state, action, params)
    # The policy is the trained greedy one: argmax of seed 1's table, batched.
    _, state, _, _ = folders.load_run(q_run)
    table = np.asarray(state.agent.params[1])
    np.testing.assert_array_equal(np.asarray(act(np.arange(25))), table.argmax(-1))
    with pytest.raises(ValueError, match="--seed 2:"):
        rljax.load_policy(q_run, seed=2)


@pytest.mark.parametrize(("algo", "env"), [("q_learning", "GridWorld-v0"), ("dqn", "CartPole-v1")])
def test_render_writes_a_gif(tmp_path, algo, env):
    run = tmp_path / "run"
    steps = "500" if algo == "dqn" else "1000"
    extra = ["--set", "hidden_sizes=8", "--set", "buffer_size=100", "--set", "learning_starts=64"]
    args = ["train", algo, env, "--seeds", 1, "--steps", steps, "--out", run]
    assert _main(*args, *(extra if algo == "dqn" else [])) == 0
    assert _main("render", run, "--out", tmp_path / "ep.gif", "--max-steps", 20) == 0
    assert (tmp_path / "ep.gif").read_bytes()[:3] == b"GIF"


def test_tensorboard_event_files(tmp_path):
    run = tmp_path / "q"
    assert _main(*Q_ARGS, "--out", run, "--tensorboard") == 0
    events = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    from tensorboardX.event_file_writer import EventFileWriter  # noqa: F401  (installed)

    settings = registry.settable("q_learning")
    assert "learning_rate" in settings


@pytest.mark.parametrize("algo", ["a2c", "a3c"])
def test_example_docstrings_describe_their_presets_stopping_rule(algo):
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "examples" / f"{algo}_cartpole.py").read_text()
    rule = registry.ALGOS[algo].presets["cartpole"].train_config
    assert rule.stop_on == "greedy" and "greedy" in doc
    assert f"above {rule.stop_return:g}" in doc.replace("\n", " ")
    assert f"{rule.eval_episodes} episodes" in doc.replace("\n", " ")


def test_value_iteration_with_gamma_one(tmp_path, capsys):
    args = ["train", "value_iteration", "GridWorld-v0", "--set", "gamma=1", "--seeds", 1]
    assert _main(*args, "--out", tmp_path / "vi") == 0
    out = capsys.readouterr().out
    assert "not converged" not in out and "+1.000" in out  # V(start) = the goal's +1
