"""Traced programs kept on disk (`rljax.run.programs`): a new process reads them instead
of tracing, gets the same results, and never reads a program traced from something else."""

from __future__ import annotations

import threading
import types

import jax
import numpy as np
import pytest

import rljax
from rljax.envs.gridworld import GridWorld
from rljax.envs.pacman import Pacman
from rljax.run import loop, programs, registry

# A2C (flax network, optax state, hyperparameters with a None field) on a cheap probe.
OVER = {
    "total_env_steps": "64",
    "chunk_env_steps": "32",
    "num_envs": "4",
    "rollout_len": "2",
    "hidden_sizes": "8",
    "eval_episodes": "2",
}


@pytest.fixture
def store(tmp_path, monkeypatch):
    folder = tmp_path / "programs"
    monkeypatch.setattr(programs, "store_folder", lambda: folder)
    return folder


@pytest.fixture(scope="module")
def experiment():
    return registry.make_experiment("a2c", "Probe-Bandit-v0", "default", OVER)


def counting(trainer, calls: list):
    """`trainer` (a new object: `jitted` builds new programs for it) whose Python pieces
    record each time they are traced."""

    def init(key, hparams):
        calls.append("init")
        return trainer.init(key, hparams)

    def run_chunk(state):
        calls.append("run_chunk")
        return trainer.run_chunk(state)

    return trainer._replace(init=init, run_chunk=run_chunk)


def one_chunk(trainer, hparams, seeds=3):
    """One chunk of `seeds` runs through `loop.jitted`'s programs: `(state, metrics)`."""
    hp = rljax.tile_hparams(hparams, seeds)
    init, chunk, _ = loop.jitted(trainer)
    state = init(jax.random.split(jax.random.key(0), seeds), hp)
    return chunk.lower(state).compile()(state)


def _data(x):
    return jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x


def assert_same(a, b):
    a, b = jax.tree.map(_data, a), jax.tree.map(_data, b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_a_new_process_reads_the_program_instead_of_tracing_it(store, experiment):
    hp = experiment.hparams
    first: list = []
    out_first = one_chunk(counting(experiment.trainer, first), hp)
    assert first == ["init", "run_chunk"]
    assert len(list(store.glob("*" + programs.SUFFIX))) == 2  # init and the chunk

    second: list = []  # new program objects, as in a new process: nothing is traced
    out_second = one_chunk(counting(experiment.trainer, second), hp)
    assert second == []
    # The same results as tracing and jitting as usual, bit for bit.
    plain = one_chunk(experiment.trainer._replace(fingerprint=None), hp)
    assert_same(out_first, plain)
    assert_same(out_second, plain)


def test_another_input_structure_or_experiment_is_traced_again(store, experiment):
    calls: list = []
    one_chunk(counting(experiment.trainer, calls), experiment.hparams)
    # A hyperparameter that is None in one program and a traced value in the other.
    calls.clear()
    hp = experiment.hparams.replace(critic_learning_rate=1e-3)
    one_chunk(counting(experiment.trainer, calls), hp)
    assert calls == ["init", "run_chunk"]
    # Another batch size.
    calls.clear()
    one_chunk(counting(experiment.trainer, calls), experiment.hparams, seeds=2)
    assert calls == ["init", "run_chunk"]
    # Another experiment: each setting it was built from is in its fingerprint.
    fingerprints = {experiment.trainer.fingerprint}
    for change in ({"hidden_sizes": "16"}, {"rollout_len": "4"}, {"total_env_steps": "96"}):
        other = registry.make_experiment("a2c", "Probe-Bandit-v0", "default", {**OVER, **change})
        fingerprints.add(other.trainer.fingerprint)
    same = registry.make_experiment("a2c", "Probe-Bandit-v0", "default", OVER)
    assert same.trainer.fingerprint == experiment.trainer.fingerprint  # deterministic
    assert len(fingerprints) == 4


def test_the_fingerprint_names_the_environment_and_its_code(tmp_path):
    a2c = registry.make_experiment("a2c", "Probe-Bandit-v0", "default", OVER)
    env, params = a2c.env, a2c.env_params
    key = programs.experiment_fingerprint("a2c", a2c.config, a2c.train_config, env, params)
    cart = registry.make_experiment("a2c", "CartPole-v1")
    other = programs.experiment_fingerprint("a2c", a2c.config, a2c.train_config, cart.env, params)
    longer = params.replace(max_steps_in_episode=params.max_steps_in_episode + 1)
    other_params = programs.experiment_fingerprint("a2c", a2c.config, a2c.train_config, env, longer)
    assert len({key, other, other_params}) == 3
    # Environments of one class and the same parameters that differ in how they were built
    # (GridWorld-v0 and GridWorld5-v0: `stay_action`; Pacman's ghost rows).
    grid, grid5 = GridWorld(), GridWorld(stay_action=True)
    keys = {
        programs.experiment_fingerprint(
            "q_learning", None, a2c.train_config, g, grid.default_params
        )
        for g in (grid, grid5)
    }
    ghosts = {
        programs.experiment_fingerprint("a2c", a2c.config, a2c.train_config, p, params)
        for p in (Pacman(), Pacman(ghost_rows=(2, 3, 4)))
    }
    assert len(keys) == 2 and len(ghosts) == 2
    f = tmp_path / "code.py"
    f.write_text("x = 1\n")
    before = programs._hash_files({str(f)})
    f.write_text("x = 2\n")
    assert programs._hash_files({str(f)}) != before


def test_a_damaged_program_is_removed_and_traced_again(store, experiment):
    hp = experiment.hparams
    expected = one_chunk(experiment.trainer._replace(fingerprint=None), hp)
    one_chunk(counting(experiment.trainer, []), hp)
    for path in store.glob("*" + programs.SUFFIX):
        path.write_bytes(path.read_bytes()[:100])  # a file cut short
    calls: list = []
    assert_same(one_chunk(counting(experiment.trainer, calls), hp), expected)
    assert calls == ["init", "run_chunk"]
    calls.clear()
    one_chunk(counting(experiment.trainer, calls), hp)
    assert calls == []  # written whole again


def test_no_store_without_the_compile_cache_or_with_a_debugging_switch(monkeypatch):
    assert programs.store_folder() is not None  # the suite's cache (tests/conftest.py)
    for flag in programs.DEBUG_FLAGS:
        old = getattr(jax.config, flag)
        jax.config.update(flag, True)
        try:
            assert programs.store_folder() is None, flag
        finally:
            jax.config.update(flag, old)
    # With the store off, the runner prefetches nothing: no shapes are read, nothing traced.
    monkeypatch.setattr(programs, "store_folder", lambda: None)
    calls: list = []
    exp = registry.make_experiment("a2c", "Probe-Bandit-v0", "default", OVER)
    init, chunk, _ = loop.jitted(counting(exp.trainer, calls))
    keys = jax.random.split(jax.random.key(0), 2)
    assert init.output_shapes(keys, rljax.tile_hparams(exp.hparams, 2)) is None
    chunk.prefetch(keys)
    assert calls == []
    monkeypatch.undo()
    no_cache = types.SimpleNamespace(config=types.SimpleNamespace(jax_compilation_cache_dir=""))
    monkeypatch.setattr(programs, "jax", no_cache)
    assert programs.store_folder() is None


def test_at_most_max_files_are_kept_least_recently_used_first(store, experiment, monkeypatch):
    monkeypatch.setattr(programs, "MAX_FILES", 2)
    one_chunk(counting(experiment.trainer, []), experiment.hparams)
    first = {p.name for p in store.glob("*" + programs.SUFFIX)}
    one_chunk(counting(experiment.trainer, []), experiment.hparams, seeds=2)
    kept = {p.name for p in store.glob("*" + programs.SUFFIX)}
    assert len(first) == len(kept) == 2 and not kept & first


def threads_tracing(trainer, names: list):
    """`trainer` whose `run_chunk` records the name of the thread that traces it."""

    def run_chunk(state):
        names.append(threading.current_thread().name)
        return trainer.run_chunk(state)

    return trainer._replace(run_chunk=run_chunk)


def test_the_chunk_is_built_on_a_background_thread_while_init_runs(store, experiment):
    hp = rljax.tile_hparams(experiment.hparams, 3)
    keys = jax.random.split(jax.random.key(0), 3)
    expected = one_chunk(experiment.trainer._replace(fingerprint=None), experiment.hparams)
    for traced in (["init", "run_chunk"], []):  # a cold start, then a warm one
        calls: list = []
        names: list = []
        trainer = threads_tracing(counting(experiment.trainer, calls), names)
        init, chunk, _ = loop.jitted(trainer)
        shapes = init.output_shapes(keys, hp)
        state = loop.init_runs(trainer, keys, hp)
        assert jax.tree.structure(shapes) == jax.tree.structure(state)
        for s, x in zip(jax.tree.leaves(shapes), jax.tree.leaves(state), strict=True):
            assert (s.shape, s.dtype) == (x.shape, x.dtype)
        out = chunk.lower(state).compile()(state)
        assert calls == traced
        assert all(name.startswith("rljax-programs") for name in names)
        assert_same(out, expected)
    assert loop.programs(trainer) is loop.programs(trainer, None)  # one set of programs


def test_a_thread_with_other_settings_builds_its_own_chunk(store, experiment):
    hp = rljax.tile_hparams(experiment.hparams, 3)
    keys = jax.random.split(jax.random.key(0), 3)
    names: list = []
    trainer = threads_tracing(experiment.trainer, names)
    # A setting changed for this thread only: the background thread would trace otherwise.
    with jax.numpy_rank_promotion("warn"):
        state = loop.init_runs(trainer, keys, hp)
        loop.jitted(trainer)[1].lower(state).compile()
    assert names == [threading.current_thread().name]


def test_an_error_building_the_chunk_in_the_background_is_raised_where_it_is_used(
    store, experiment
):
    def broken(state):
        raise RuntimeError("the chunk cannot be traced")

    trainer = experiment.trainer._replace(run_chunk=broken)
    keys = jax.random.split(jax.random.key(0), 2)
    state = loop.init_runs(trainer, keys, rljax.tile_hparams(experiment.hparams, 2))
    with pytest.raises(RuntimeError, match="cannot be traced"):
        loop.jitted(trainer)[1].lower(state).compile()(state)


def test_a_stored_program_remembers_what_compiling_it_took(store, experiment):
    # The runner's compaction weighs a smaller batch's compilation by the first chunk's: a
    # warm start, which only loads it, must not make compiling look cheap.
    hp = rljax.tile_hparams(experiment.hparams, 3)
    keys = jax.random.split(jax.random.key(0), 3)
    seconds = []
    for _ in range(2):  # traced and compiled, then (new objects, as a new process) read
        trainer = counting(experiment.trainer, [])
        state = loop.init_runs(trainer, keys, hp)
        fn = loop.jitted(trainer)[1].lower(state).compile()
        seconds.append((fn.build_seconds, fn.compile_seconds))
    (cold_build, cold), (_, warm) = seconds
    assert cold == cold_build > 0
    assert warm == cold


def test_the_greedy_rules_evaluation_is_built_in_the_background_beside_the_chunk(store):
    # With the greedy stopping rule the chunk's check runs as programs of their own: the
    # runner builds them on background threads too, while `init` runs, and traces them
    # only once the chunk is traced, so that their tracing does not delay the chunk's
    # compilation, the longest (Python's lock lets one thread trace at a time).
    over = {**OVER, "stop_return": "0.5", "stop_on": "greedy"}
    exp = registry.make_experiment("a2c", "Probe-Bandit-v0", "default", over)
    names: dict[str, list] = {}
    events: list[tuple[str, str]] = []

    def recorded(name, fun):
        def traced(*args):
            names.setdefault(name, []).append(threading.current_thread().name)
            events.append(("start", name))
            out = fun(*args)
            events.append(("end", name))
            return out

        return traced

    trainer = exp.trainer._replace(
        train_chunk=recorded("train_chunk", exp.trainer.train_chunk),
        evaluate=recorded("evaluate", exp.trainer.evaluate),
        greedy_stop=recorded("greedy_stop", exp.trainer.greedy_stop),
    )
    keys = jax.random.split(jax.random.key(0), 2)
    state = loop.init_runs(trainer, keys, rljax.tile_hparams(exp.hparams, 2))
    state, row = loop.compile_chunk(trainer, state)(state)
    assert set(names) == {"train_chunk", "evaluate", "greedy_stop"}
    assert len(names["evaluate"]) == 1
    assert all(n.startswith("rljax-programs") for ns in names.values() for n in ns), names
    assert row["greedy_return"].shape == (2,)
    chunk_traced = events.index(("end", "train_chunk"))
    assert events.index(("start", "evaluate")) > chunk_traced, events
    assert events.index(("start", "greedy_stop")) > chunk_traced, events
