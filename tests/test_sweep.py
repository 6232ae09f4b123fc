"""Sweeps and compaction: finished runs leave the batch without changing any result; a
sweep's runs equal the single runs; errors before compiling; devices; the compile cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import rljax
from rljax.core.keys import keys_to_data
from rljax.run import cli, loop, registry
from rljax.run import sweep as sweep_module
from rljax.run.sweep import sweep

Q = {"total_env_steps": "6000", "chunk_env_steps": "500", "stop_return": "0.5", "stop_window": "5"}


def test_compacted_batch_equals_uncompacted():
    # Eight Q-learning runs stop at different steps; the compacted loop computes the runs
    # left in batches of 4 and then 2 (so runs move from one smaller batch to the next),
    # and every result is bitwise the uncompacted one.
    exp = registry.make_experiment("q_learning", "GridWorld-v0", "default", Q)
    keys = jax.random.split(jax.random.key(2), 8)
    hp = rljax.tile_hparams(exp.hparams, 8)
    a = loop.run_batch(exp.trainer, keys, hp, compact="always")
    b = loop.run_batch(exp.trainer, keys, hp, compact=False)
    stops = np.asarray(a.state.stop_step)
    assert (stops > 0).all(), stops
    # Some chunk has 3 or 4 runs left (batch of 4), a later one 1 or 2 (batch of 2).
    left = [(stops > s).sum() for s in range(0, 6000, 500)]
    assert {3, 4} & set(left) and {1, 2} & set(left), stops
    assert a.batch_sizes == (8, 4, 2) and b.batch_sizes == (8,)
    np.testing.assert_array_equal(stops, np.asarray(b.state.stop_step))
    np.testing.assert_array_equal(a.eval_returns, b.eval_returns)
    np.testing.assert_array_equal(a.state.agent.params, b.state.agent.params)
    for name in a.metrics:
        np.testing.assert_array_equal(a.metrics[name], b.metrics[name], err_msg=name)
    # Stopped runs' rows are blank after their stop, in both.
    assert (a.metrics["env_steps"] == -1).any()


def _host_state(state):
    return [np.asarray(x) for x in jax.tree.leaves(keys_to_data(state))]


def test_every_runs_state_is_current_after_each_chunk_while_compacted():
    # What a checkpoint saves: after every chunk, `ChunkDone.state` holds each run's state
    # as the uncompacted loop has it, also while finished runs are out of the batch and
    # after runs moved from one smaller batch to the next (8 -> 4 -> 2, as above). (A
    # stopped run's key is never used again: the uncompacted batch moves it on, a run out
    # of the batch keeps it; the running runs' keys must agree.)
    exp = registry.make_experiment("q_learning", "GridWorld-v0", "default", Q)
    keys = jax.random.split(jax.random.key(2), 8)
    hp = rljax.tile_hparams(exp.hparams, 8)
    init = loop.jitted(exp.trainer)[0]
    seen = {}
    for compact in ("always", False):
        seen[compact] = [  # read each state before the loop goes on
            (
                _host_state(done.state._replace(key=None)),
                _host_state(done.state.key)[0],
                np.asarray(done.state.stopped),
            )
            for done in loop.chunk_loop(exp.trainer, init(keys, hp), compact=compact)
        ]
    assert len(seen["always"]) == len(seen[False]) > 8
    for chunk, (a, b) in enumerate(zip(seen["always"], seen[False], strict=True), 1):
        for x, y in zip(a[0], b[0], strict=True):
            np.testing.assert_array_equal(x, y, err_msg=f"chunk {chunk}")
        running = ~b[2]
        np.testing.assert_array_equal(a[1][running], b[1][running], err_msg=f"chunk {chunk}")


# Eight Q-learning runs with the greedy stopping rule (the greedy walk reaches the goal):
# they stop after 14 to 16 of 16 chunks, one never does.
Q_GREEDY = {"total_env_steps": "16000", "chunk_env_steps": "1000", "stop_return": "0.5",
            "stop_on": "greedy", "eval_episodes": "4"}  # fmt: skip


def test_greedy_rule_between_chunks_equals_the_rule_inside_the_chunk():
    # The runner checks the greedy rule after each chunk with programs of their own
    # (`train_chunk`, `evaluate`, `greedy_stop`); `run_chunk`, as `make_train` runs it,
    # checks it inside the chunk's program. Every chunk's row and the final state agree
    # bitwise, and the runner traces the greedy policy once: its evaluation program is the
    # final evaluation's (inside the chunk it would be traced, and compiled, twice). (A
    # network agent's runs may differ in the last bits: XLA fuses the update otherwise in
    # the other program, as in a batch of another size.)
    exp = registry.make_experiment("q_learning", "GridWorld-v0", "default", Q_GREEDY)
    greedy_traces = []

    def act(state, obs, key, greedy=False):
        greedy_traces.append(greedy)
        return exp.agent.act(state, obs, key, greedy=greedy)

    agent = exp.agent._replace(act=act)
    trainer = rljax.make_trainer(agent, exp.env, exp.env_params, exp.train_config)
    keys = jax.random.split(jax.random.key(2), 8)
    hp = rljax.tile_hparams(exp.hparams, 8)
    result = loop.run_batch(trainer, keys, hp, compact=False, devices=None)
    assert greedy_traces.count(True) == 1

    stops = np.asarray(result.state.stop_step)
    assert len(set(stops[stops > 0])) >= 3 and (stops == -1).sum() >= 1, stops
    run_chunk = jax.jit(jax.vmap(trainer.run_chunk))
    state = jax.jit(jax.vmap(trainer.init))(keys, hp)
    for chunk in range(exp.train_config.num_chunks):
        state, row = run_chunk(state)
        for name, value in rljax.host_metrics(row).items():
            np.testing.assert_array_equal(result.metrics[name][:, chunk], value, err_msg=name)
    np.testing.assert_array_equal(stops, np.asarray(state.stop_step))
    for x, y in zip(jax.tree.leaves(result.state.agent), jax.tree.leaves(state.agent), strict=True):
        np.testing.assert_array_equal(x, y)


def test_bucket_sizes():
    assert [loop.bucket(n) for n in (1, 2, 3, 5, 8, 9)] == [2, 2, 4, 8, 8, 16]
    assert [loop.bucket(n, 4) for n in (1, 4, 5, 9)] == [4, 4, 8, 16]


def test_shrinking_is_worth_its_compilation_only_for_what_it_is_expected_to_save():
    # The 8 DQN seeds of benchmarks/sweep.py on 2 devices, 250-step chunks: 4 still running
    # at chunk 140 of 400, a chunk of 8 runs taking 0.053 s, a compilation 4.8 s. The loop
    # shrank to 4 and then 2 runs, and the batch trained no faster (113, 129 and 213 us per
    # step at 2, 4 and 8 runs): the cost is not in proportion to the size, and the runs
    # left went on for 220 chunks at most, not the 260 to the budget's end.
    worth = loop.worth_shrinking
    assert not worth(0.053, 8, 4, chunk=140, num_chunks=400, compile_seconds=4.8, devices=2)
    assert not worth(0.032, 4, 2, chunk=160, num_chunks=400, compile_seconds=4.8, devices=2)
    # Halving 2 runs per device saves a quarter of a chunk ((1 + 2) / (2 + 2)), not half:
    # 0.032 * 0.25 * 99 = 0.8 s, less than a 1.2 s compilation.
    assert not worth(0.032, 4, 2, chunk=100, num_chunks=400, compile_seconds=1.2, devices=2)
    assert worth(0.032, 4, 2, chunk=100, num_chunks=400, compile_seconds=0.7, devices=2)
    # The fixed cost is per device: 8 -> 4 runs on 4 devices is 2 -> 1 per device, a
    # quarter saved (0.1 * 0.25 * 99 = 2.5 s), not (1 - 6/10) of the chunk (4.0 s).
    assert not worth(0.1, 8, 4, chunk=100, num_chunks=400, compile_seconds=3.0, devices=4)
    assert worth(0.1, 8, 4, chunk=100, num_chunks=400, compile_seconds=3.0, devices=1)
    # 64 runs halved early in a long budget: 0.43 * (1 - 18/34) * 59 = 12 s saved.
    assert worth(0.43, 64, 32, chunk=60, num_chunks=400, compile_seconds=5.0, devices=2)
    # At most to the budget's end: 5 chunks left save 5 * 0.4 * (1 - 34/66) = 1.0 s.
    assert not worth(0.4, 64, 32, chunk=396, num_chunks=400, compile_seconds=1.5)
    assert worth(0.4, 64, 32, chunk=390, num_chunks=400, compile_seconds=1.5)
    # Before any chunk has run nothing is expected of the runs; nothing shrinks.
    assert not worth(9.0, 64, 2, chunk=1, num_chunks=100, compile_seconds=0.1)


def test_each_sweep_run_equals_its_single_run():
    result = sweep(
        "q_learning", "GridWorld-v0", grid={"learning_rate": [0.05, 0.2]}, seeds=2,
        overrides=Q, compile_cache=False,
    )  # fmt: skip
    assert len(result.table) == 4 and result.summary["settings"] == 2
    # The single run: seed j of `rljax train --seed 0 --seeds 2` with that setting.
    keys = jax.random.split(jax.random.key(0), 2)
    for row in result.table:
        exp = registry.make_experiment(
            "q_learning", "GridWorld-v0", "default", {**Q, "learning_rate": row["learning_rate"]}
        )
        j = row["seed"]
        out = loop.run_batch(exp.trainer, keys[j : j + 1], rljax.tile_hparams(exp.hparams, 1))
        assert int(out.state.stop_step[0]) == row["stop_step"]
        curve, ran = out.metrics["episode_return_mean"][0], out.metrics["env_steps"][0] >= 0
        assert float(np.nanmean(curve[ran])) == row["auc"]
        assert float(out.eval_returns.mean()) == row["final_return"]  # deterministic world
    best = result.summary["ranked"][0]
    assert best["final_return_mean"] >= result.summary["ranked"][1]["final_return_mean"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"grid": {"lr": [0.1]}}, "unknown setting 'lr'"),
        ({"grid": {}}, "grid is empty"),
        ({"grid": {"learning_rate": []}}, "gives 'learning_rate' no values"),
        ({"grid": {"learning_rate": [0.1, 2.0]}}, r"learning_rate must lie in .*got 2"),
        ({"grid": {"hidden_sizes": ["0"]}}, "unknown setting 'hidden_sizes'"),
        ({"random": {"gamma": (0.9, 0.99, "log")}}, "samples >= 1"),
        ({"random": {"gamma": (0.9, 0.5, "linear")}, "samples": 2}, "low < high"),
        ({"grid": {"gamma": [0.9]}, "settings": [{"gamma": 0.9}]}, "exactly one"),
    ],
)
def test_bad_sweeps_are_refused_before_compiling(kwargs, message, monkeypatch):
    def never(*args, **kw):
        raise AssertionError("compiled")

    monkeypatch.setattr(sweep_module, "run_batch", never)
    with pytest.raises(ValueError, match=message):
        sweep("q_learning", "GridWorld-v0", seeds=2, compile_cache=False, **kwargs)
    with pytest.raises(ValueError, match=message):  # the same through `rljax.sweep`
        rljax.sweep("q_learning", "GridWorld-v0", seeds=2, compile_cache=False, **kwargs)


def test_random_sweep_draws_in_range_on_a_log_scale():
    settings = sweep_module.expand(
        "dqn", random={"learning_rate": (1e-4, 1e-2, "log"), "batch_size": (16, 64, "linear")},
        samples=200, seed=1,
    )  # fmt: skip
    lr = np.array([float(s["learning_rate"]) for s in settings])
    assert lr.min() >= 1e-4 and lr.max() <= 1e-2
    assert 0.4 < np.mean(lr < 1e-3) < 0.6  # half the draws below the geometric middle
    assert all(s["batch_size"].isdigit() for s in settings)  # an int setting stays an int


def test_cli_sweep_writes_its_folder_and_resumes(tmp_path, capsys, monkeypatch):
    out = tmp_path / "sw"
    args = ["sweep", "q_learning", "GridWorld-v0", "--grid", "learning_rate=0.05,0.2",
            "--grid", "num_envs=1,2", "--seeds", "2", "--steps", "2000",
            "--out", str(out)]  # fmt: skip
    assert cli.main(args) == 0
    for name in ("sweep.csv", "summary.json", "curves.png", "heatmap.png", "sweep.json"):
        assert (out / name).stat().st_size > 0, name
    rows = (out / "sweep.csv").read_text().splitlines()
    assert rows[0].startswith("learning_rate,num_envs,seed,final_return,auc,stop_step")
    assert len(rows) == 1 + 8
    assert sorted(p.name for p in (out / "groups").iterdir()) == ["g000", "g001"]  # num_envs
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"] == 8 and len(summary["ranked"]) == 4
    capsys.readouterr()
    assert cli.main(args) == 2 and "--resume" in capsys.readouterr().err
    monkeypatch.setattr(sweep_module.folders, "run_in_folder", None)  # nothing may retrain
    before = (out / "sweep.csv").read_text()
    assert cli.main([*args, "--resume"]) == 0
    assert (out / "sweep.csv").read_text() == before


SCRIPT = textwrap.dedent(
    """
    import jax, rljax
    from rljax.run.sweep import sweep

    assert len(jax.devices()) == 4, jax.devices()
    over = {"total_env_steps": "3000", "chunk_env_steps": "500", "stop_return": "0.5",
            "stop_window": "5"}
    kw = dict(grid={"learning_rate": [0.05, 0.1, 0.2]}, seeds=3, overrides=over,
              compile_cache=False)
    # 9 runs: not a multiple of 4, so the batch is padded with copies that are dropped.
    one = sweep("q_learning", "GridWorld-v0", out=r"{one}", devices=None, **kw)
    four = sweep("q_learning", "GridWorld-v0", out=r"{four}", devices=jax.devices(), **kw)
    print(len(one.table), len(four.table))
    """
)


def test_sweep_on_four_devices_equals_one(tmp_path):
    script = SCRIPT.replace("{one}", str(tmp_path / "one")).replace(
        "{four}", str(tmp_path / "four")
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["9", "9"]
    one = (tmp_path / "one" / "sweep.csv").read_text()
    assert one == (tmp_path / "four" / "sweep.csv").read_text()


def test_compile_cache_is_used_by_the_command_line(tmp_path):
    drop = ("RLJAX_NO_COMPILE_CACHE", "RLJAX_COMPILE_CACHE_DIR")  # the suite's shared cache
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    cmd = [sys.executable, "-m", "rljax", "train", "q_learning", "GridWorld-v0", "--seeds", "2",
           "--steps", "1000"]  # fmt: skip
    done = subprocess.run(
        [*cmd, "--out", str(tmp_path / "a")], capture_output=True, text=True, env=env,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    entries = list((tmp_path / "cache" / "rljax" / "jax").iterdir())
    assert entries, "nothing cached"
    # --no-compile-cache: the folder is never made (every command makes it otherwise, even
    # `list`, which compiles nothing and so costs no compilation to check).
    done = subprocess.run(
        [sys.executable, "-m", "rljax", "--no-compile-cache", "list"], capture_output=True,
        text=True, env={**env, "XDG_CACHE_HOME": str(tmp_path / "other")}, timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "other" / "rljax").exists()
    # It goes after the command too, or before it.
    for flags in (["train", "dqn", "CartPole-v1", "--no-compile-cache"],
                  ["--no-compile-cache", "train", "dqn", "CartPole-v1"]):  # fmt: skip
        assert cli.parser().parse_args(flags).no_compile_cache, flags


def test_cache_folder_can_be_named_and_is_bounded(tmp_path, monkeypatch):
    from rljax.run import cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(cache.FOLDER, raising=False)
    assert cache.default_cache_dir() == tmp_path / "xdg" / "rljax" / "jax"
    monkeypatch.setenv(cache.FOLDER, str(tmp_path / "named"))
    assert cache.default_cache_dir() == tmp_path / "named"
    # The suite's own cache (tests/conftest.py) went through enable_compile_cache: bounded,
    # hence locked by filelock against concurrent readers and writers.
    assert jax.config.jax_compilation_cache_dir
    assert jax.config.jax_compilation_cache_max_size == cache.MAX_BYTES
