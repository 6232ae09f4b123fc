"""Runs spread across 4 (forced) CPU devices give the single-device results."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import pytest

from rljax.run.sharding import resolve_devices, runs_sharding, shard_runs

# Runs in a fresh interpreter: the device count is fixed when JAX starts.
SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np, rljax
    from rljax.run import loop, registry
    from rljax.run.cache import enable_compile_cache

    enable_compile_cache()  # the suite's folder: traced programs are kept (rljax.run.programs)

    assert len(jax.devices()) == 4, jax.devices()
    keys = jax.random.split(jax.random.key(0), 8)
    # (Tabular runs on 4 devices: tests/test_sweep.py's sweep, and the run folder below.)

    # A neural agent with a stopping rule: seeds stop at different chunks, on any device.
    over = {
        "total_env_steps": "1600", "chunk_env_steps": "80", "num_envs": "4",
        "rollout_len": "2", "hidden_sizes": "8", "learning_rate": "0.01",
        "stop_return": "0.9", "stop_on": "train", "stop_window": "8", "eval_episodes": "2",
    }
    exp = registry.make_experiment("a2c", "Probe-Bandit-v0", "default", over)
    hps = rljax.tile_hparams(exp.hparams, 8)
    one = loop.run_batch(exp.trainer, keys, hps, devices=jax.devices()[:1])
    four = loop.run_batch(exp.trainer, keys, hps, devices=jax.devices())
    stop = np.asarray(one.state.stop_step)
    assert (stop > 0).all() and len(set(stop.tolist())) > 1, stop
    np.testing.assert_array_equal(np.asarray(four.state.stop_step), stop)
    np.testing.assert_array_equal(np.asarray(four.state.env_steps), np.asarray(one.state.env_steps))
    for a, b in zip(jax.tree.leaves(four.state.agent.params),
                    jax.tree.leaves(one.state.agent.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)

    # A new experiment object, as in a new process, reads each batch size's sharded program
    # from disk: nothing is traced, and the results and their layout are the same.
    again = registry.make_experiment("a2c", "Probe-Bandit-v0", "default", over)
    traced = []
    def counting(state, run_chunk=again.trainer.run_chunk):
        traced.append(1)
        return run_chunk(state)
    read = loop.run_batch(again.trainer._replace(run_chunk=counting), keys, hps,
                          devices=jax.devices())
    assert traced == [], traced
    assert len(read.state.env_steps.sharding.device_set) == 4
    np.testing.assert_array_equal(np.asarray(read.state.stop_step), stop)
    for a, b in zip(jax.tree.leaves(read.state.agent), jax.tree.leaves(four.state.agent)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    # "auto" is every CPU device for a batch, the default device for one run; a run folder
    # on 4 devices (3 runs, one padding copy) saves its runs alone and resumes on 1 device.
    from rljax.run import folders
    from rljax.run.sharding import resolve_devices
    assert resolve_devices("auto", 8) == jax.devices() and resolve_devices("auto", 1) is None
    over = {"total_env_steps": "2000", "chunk_env_steps": "500"}
    exp = registry.make_experiment("q_learning", "GridWorld-v0", "default", over)
    out = OUT + "/folder"
    whole = folders.run_in_folder(exp, OUT + "/whole", seeds=3, devices=None, plot=False)
    cut = folders.run_in_folder(exp, out, seeds=3, stop_after=2, plot=False)  # auto: 4 devices
    assert cut["interrupted"]
    # (a checkpoint of 4 padded runs would not load into the 3-run state of 1 device)
    rest = folders.run_in_folder(exp, out, seeds=3, resume=True, devices=None, plot=False)
    assert rest["eval_return"] == whole["eval_return"], (rest["eval_return"], whole["eval_return"])
    print("sharded ok")
    """
)


def test_runs_sharded_across_four_devices_match_one_device(tmp_path):
    # XLA_FLAGS' device count is the user's choice: `import rljax` leaves it (4, not 3).
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", RLJAX_CPU_DEVICES="3"
    )
    script = SCRIPT.replace("OUT", repr(str(tmp_path)))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sharded ok" in done.stdout


def test_uneven_split_is_an_error_naming_the_counts():
    devices = jax.devices() * 3  # the error is about counts; placement never happens
    with pytest.raises(ValueError, match="4 runs cannot be split evenly across 3 devices"):
        runs_sharding(4, devices)
    with pytest.raises(ValueError, match="same leading"):
        shard_runs({"a": jax.numpy.zeros(4), "b": jax.numpy.zeros(3)})


def test_resolve_devices_names_what_it_refuses():
    one = jax.devices()  # the suite runs on one CPU device (conftest)
    assert resolve_devices("auto", 8) is None  # a single device: nothing to split
    assert resolve_devices(None, 8) is None
    assert resolve_devices("all") == one and resolve_devices(1) == one[:1]
    with pytest.raises(ValueError, match="devices must be 1 to 1, got 2"):
        resolve_devices(2)
    with pytest.raises(ValueError, match="'everything'"):
        resolve_devices("everything")
    with pytest.raises(ValueError, match="empty list"):
        resolve_devices([])


CORES = textwrap.dedent(
    """
    import jax, rljax
    assert len(jax.devices("cpu")) == 3, jax.devices()
    assert rljax.use_cpu_cores(2) is None  # the backend has started: nothing changes
    assert len(jax.devices()) == 3
    print("cores ok")
    """
)


def test_import_gives_one_cpu_device_per_core_as_asked():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    done = subprocess.run(
        [sys.executable, "-c", CORES], env={**env, "RLJAX_CPU_DEVICES": "3"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and "cores ok" in done.stdout, done.stderr[-2000:]
    done = subprocess.run(
        [sys.executable, "-c", "import rljax"], env={**env, "RLJAX_CPU_DEVICES": "two"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "RLJAX_CPU_DEVICES must be a count >= 1, got 'two'" in done.stderr


def test_the_runner_compiles_with_the_cpu_options_on_a_cpu():
    from rljax.run import loop, registry

    assert jax.default_backend() == "cpu"
    assert loop.compiler_options() == loop.CPU_COMPILER_OPTIONS  # this jaxlib knows them all
    assert loop.compiler_options()["xla_backend_optimization_level"] == 1
    assert "INDIVIDUAL_DOT" in loop.compiler_options()["xla_cpu_experimental_ynn_fusion_type"]
    assert loop.compiler_options() is not loop.CPU_COMPILER_OPTIONS  # a copy to pass on
    # `init` runs once: compiled for its compile time (same bits: tests comparing runs).
    init = loop.compiler_options("init")
    assert init == {**loop.CPU_COMPILER_OPTIONS, **loop.INIT_COMPILER_OPTIONS}
    exp = registry.make_experiment("q_learning", "GridWorld-v0", "default", {})
    assert loop.programs(exp.trainer).init._kw["compiler_options"] == init
    assert loop.programs(exp.trainer).run_chunk._kw["compiler_options"] == loop.compiler_options()


def test_an_option_this_jaxlib_rejects_is_left_out(monkeypatch):
    from rljax.run import loop

    bogus = {**loop.CPU_COMPILER_OPTIONS, "xla_cpu_no_such_option": True}
    monkeypatch.setattr(loop, "CPU_COMPILER_OPTIONS", bogus)
    loop._cpu_options_known.cache_clear()
    try:
        assert "xla_cpu_no_such_option" not in loop.compiler_options()
        assert "xla_backend_optimization_level" in loop.compiler_options()
    finally:
        monkeypatch.undo()
        loop._cpu_options_known.cache_clear()
