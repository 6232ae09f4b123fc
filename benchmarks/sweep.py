"""Sweeps and batches of runs: what a batch costs against its runs one after another.

    python benchmarks/sweep.py            # every figure (about 20-30 minutes on 2 CPU cores)
    python benchmarks/sweep.py --quick    # small sizes, a few minutes
    python benchmarks/sweep.py --settings 16 --seeds 64   # e.g. 1,024 runs on one GPU

Runs unchanged on CPU, GPU or TPU and writes `benchmarks/results/sweep.json` (or
`sweep_<platform>.json` off CPU) naming the device. Every ratio is measured in this one run:
  * DQN on CartPole-v1 (`default` preset, its stopping rule), `--settings` learning rates
    x `--seeds` seeds: one `rljax.run.sweep.sweep` call against the same runs one after
    another in this process (compiled once), and against separate `python -m rljax train`
    processes (a few measured, the rest extrapolated, as a user with a script would run
    them);
  * the same preset, 8 seeds in one batch against 1 seed: wall time, compacted (finished
    runs leave the batch) and not;
  * what one step of a batch of 1 to 64 DQN runs costs, on one device and split across
    every CPU device (one per core, `rljax.use_cpu_cores`);
  * (the course's DQN, 64 seeds against the PyTorch port's one: benchmarks/dqn_cartpole.py);
  * cold compilation of DQN's and A2C's pieces in a fresh process, and warm (the same in a
    second process with JAX's persistent compilation cache): seconds before the first chunk.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
from _common import run_peer

import rljax
from rljax.run import loop, registry
from rljax.run.sharding import runs_sharding, shard_runs
from rljax.run.sweep import sweep

HERE = Path(__file__).resolve().parent
LEARNING_RATES = [1e-3, 7e-4, 5e-4, 3e-4, 2e-3, 1.5e-3, 8e-4, 6e-4,
                  4e-4, 2.5e-3, 1.2e-3, 9e-4, 1.8e-3, 1.1e-3, 3e-3, 6.5e-4]  # fmt: skip


def device_info() -> dict:
    d = jax.devices()[0]
    return {"platform": d.platform, "device_kind": d.device_kind, "count": jax.device_count(),
            "machine": platform.machine(), "cpus": os.cpu_count()}  # fmt: skip


def sweep_vs_sequential(settings: int, seeds: int, steps: int, separate: int) -> dict:
    grid = {"learning_rate": LEARNING_RATES[:settings]}
    over = {"total_env_steps": str(steps)}
    t0 = time.perf_counter()
    result = sweep("dqn", "CartPole-v1", grid=grid, seeds=seeds, overrides=over,
                   compile_cache=False)  # fmt: skip
    sweep_s = time.perf_counter() - t0
    solved = sum(r["final_return"] >= 475 for r in result.table)
    # The same runs one after another, compiled once (one static configuration).
    exp = registry.make_experiment("dqn", "CartPole-v1", "default", over)
    keys = jax.random.split(jax.random.key(0), seeds)
    t0 = time.perf_counter()
    for lr in grid["learning_rate"]:
        hp = rljax.tile_hparams(exp.hparams.replace(learning_rate=lr), 1)
        for j in range(seeds):
            loop.run_batch(exp.trainer, keys[j : j + 1], hp)
    sequential_s = time.perf_counter() - t0
    # Separate processes, as a script of `rljax train` commands would run them.
    per_process = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(separate):
            lr = f"learning_rate={LEARNING_RATES[i]}"
            cmd = [sys.executable, "-m", "rljax", "train", "dqn", "CartPole-v1", "--seeds", "1",
                   "--seed", str(i), "--steps", str(steps), "--set", lr,
                   "--out", f"{tmp}/r{i}", "--no-compile-cache"]  # fmt: skip
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            per_process.append(time.perf_counter() - t0)
    runs = settings * seeds
    processes_s = float(np.mean(per_process)) * runs
    return {
        "runs": runs, "settings": settings, "seeds": seeds, "env_steps_budget": steps,
        "sweep_seconds": round(sweep_s, 1), "sequential_seconds": round(sequential_s, 1),
        "sweep_over_sequential": round(sweep_s / sequential_s, 3),
        "separate_processes_measured": len(per_process),
        "separate_process_seconds_each": [round(x, 1) for x in per_process],
        "separate_processes_extrapolated_seconds": round(processes_s, 1),
        "runs_reaching_475": int(solved),
        "target": "sweep <= 1/2 of sequential",
    }  # fmt: skip


def batch_vs_one(seeds: int, preset: str) -> dict:
    """1 seed, then `seeds` seeds compacted and not, each from its own experiment object, so
    that each compiles its own programs (no persistent cache in this process): a batch
    never reuses what another compiled."""
    keys = jax.random.split(jax.random.key(0), seeds)
    out = {}
    for label, k, compact in [
        ("one_seed", keys[:1], True),
        ("batch_compacted", keys, True),
        ("batch_uncompacted", keys, False),
    ]:
        exp = registry.make_experiment("dqn", "CartPole-v1", preset)
        h = rljax.tile_hparams(exp.hparams, len(k))
        t0 = time.perf_counter()
        result = loop.run_batch(exp.trainer, k, h, compact=compact)
        wall = time.perf_counter() - t0
        out[label] = {
            "seeds": len(k), "wall_seconds": round(wall, 1),
            "compile_seconds": round(result.compile_seconds, 1),
            "train_seconds": round(result.train_seconds, 1),
            "stop_steps": np.asarray(result.state.stop_step).tolist(),
            "greedy_return": np.round(result.eval_returns.mean(axis=1), 1).tolist(),
        }  # fmt: skip
    one = out["one_seed"]["wall_seconds"]
    out["compacted_over_one_seed"] = round(out["batch_compacted"]["wall_seconds"] / one, 2)
    out["uncompacted_over_one_seed"] = round(out["batch_uncompacted"]["wall_seconds"] / one, 2)
    return out


def batch_cost(sizes: tuple[int, ...], chunks: int = 4) -> dict:
    """Microseconds per step of a batch of DQN `default` runs (no stopping rule, after
    learning starts), on the default device alone and split across every CPU device
    (`rljax.use_cpu_cores`): what a batch costs against its size, and what the second
    core buys."""
    exp = registry.make_experiment("dqn", "CartPole-v1", "default", {"stop_return": "none"})
    layouts = {"one_device": None}
    if len(jax.devices()) > 1 and jax.devices()[0].platform == "cpu":
        layouts[f"{len(jax.devices())}_cpu_devices"] = jax.devices()
    out = {"env_steps_per_chunk": exp.train_config.chunk_env_steps, "chunks_timed": chunks}
    for name, devices in layouts.items():
        rows = {}
        for size in sizes:
            if devices is not None and size % len(devices):
                continue
            sharding = None if devices is None else runs_sharding(size, devices)
            init, chunk, _ = loop.jitted(exp.trainer, sharding)
            keys = jax.random.split(jax.random.key(0), size)
            hp = rljax.tile_hparams(exp.hparams, size)
            if devices is not None:
                keys, hp = shard_runs(keys, devices), shard_runs(hp, devices)
            state = init(keys, hp)
            fn = chunk.lower(state).compile()
            for _ in range(5):  # the memory fills; gradient steps begin
                state = jax.block_until_ready(fn(state)[0])
            t0 = time.perf_counter()
            for _ in range(chunks):
                state, _ = fn(state)
            jax.block_until_ready(state)
            step_us = (time.perf_counter() - t0) / (chunks * out["env_steps_per_chunk"]) * 1e6
            rows[str(size)] = {"step_us": round(step_us, 1), "per_run_us": round(step_us / size, 1)}
            print(f"  {name} {size:3d} runs: {step_us:8.1f} us/step", flush=True)
        out[name] = rows
    return out


COMPILE_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
import jax, rljax
from rljax.run import loop, registry
from rljax.run.cache import enable_compile_cache
if sys.argv[2] == "cache":
    enable_compile_cache(sys.argv[3])
exp = registry.make_experiment(sys.argv[1], "CartPole-v1", "default",
                               {"total_env_steps": "10240", "chunk_env_steps": "5120"})
keys = jax.random.split(jax.random.key(0), 1)
t1 = time.perf_counter()
hparams = rljax.tile_hparams(exp.hparams, 1)
state = jax.block_until_ready(loop.init_runs(exp.trainer, keys, hparams))  # as the runner
chunk_fn = loop.compile_chunk(exp.trainer, state)  # every program a chunk runs
t2 = time.perf_counter()
print(json.dumps({"import_and_build": t1 - t0, "compile_before_first_chunk": t2 - t1}))
"""


def compile_times(rounds: int = 3) -> dict:
    """Cold and warm compile of DQN and A2C (fresh processes sharing a new cache), and
    rejax's DQN compile, in `rounds` interleaved rounds: each figure is the median of its
    rounds (single fresh processes on this shared machine vary by +-2 s)."""
    samples: dict = {"dqn": {"cold": [], "warm": []}, "a2c": {"cold": [], "warm": []}}
    peers = []
    for _ in range(rounds):
        for algo in ("dqn", "a2c"):
            with tempfile.TemporaryDirectory() as cache:
                for label in ("cold", "warm"):
                    done = subprocess.run(
                        [sys.executable, "-c", COMPILE_SCRIPT, algo, "cache", cache],
                        capture_output=True, text=True, check=True,
                        env={k: v for k, v in os.environ.items() if k != "RLJAX_NO_COMPILE_CACHE"},
                    )  # fmt: skip
                    samples[algo][label].append(json.loads(done.stdout.splitlines()[-1]))
        # rejax's DQN (its CartPole config) in its own venv on the same jax: `lower().
        # compile()` of its whole `train` (a tiny budget: only the compile counts).
        peers.append(
            run_peer("rejax", "rejax_dqn.py", "--seeds", "1", "--steps", "6000", "--no-train-eval")
        )
    out: dict = {"rounds": rounds}
    for algo, runs in samples.items():
        out[algo] = {
            label: {key: round(float(np.median([r[key] for r in rows])), 2) for key in rows[0]}
            | {"samples": [round(r["compile_before_first_chunk"], 2) for r in rows]}
            for label, rows in runs.items()
        }
    seconds = [p.get("compile_seconds") if p else None for p in peers]
    if None in seconds:
        out["rejax_dqn"] = None  # not installed, or failed (printed)
    else:
        middle = int(np.argsort(seconds)[len(seconds) // 2])
        out["rejax_dqn"] = {**peers[middle], "compile_seconds_samples": seconds}
    out["target"] = "warm: under 1 s before the first chunk; cold: no more than rejax's DQN"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    parser.add_argument("--settings", type=int, default=16, help="learning rates swept")
    parser.add_argument("--seeds", type=int, default=4, help="seeds per setting")
    parser.add_argument("--steps", type=int, default=100_000, help="budget per run")
    parser.add_argument("--separate", type=int, default=3, help="separate processes measured")
    parser.add_argument("--out", default=None, help="JSON to write")
    args = parser.parse_args()
    if args.quick:
        args.settings, args.seeds, args.steps = 4, 2, 20_000
        args.separate = 1
    results = {
        "command": " ".join(["python", "benchmarks/sweep.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "device": device_info(),
        "versions": {"jax": jax.__version__, "rljax": rljax.__version__},
    }
    print("compile times (fresh processes) ...", flush=True)
    results["compile"] = compile_times(1 if args.quick else 3)
    print(json.dumps(results["compile"], indent=1), flush=True)
    print("a batch's cost per step against its size ...", flush=True)
    results["batch_cost"] = batch_cost((1, 8) if args.quick else (1, 2, 4, 8, 16, 64))
    print(f"sweep: {args.settings} settings x {args.seeds} seeds ...", flush=True)
    results["sweep"] = sweep_vs_sequential(args.settings, args.seeds, args.steps, args.separate)
    print(json.dumps(results["sweep"], indent=1), flush=True)
    print("DQN default, 8 seeds vs 1 ...", flush=True)
    results["default_8_seeds"] = batch_vs_one(8, "default")
    print(json.dumps(results["default_8_seeds"], indent=1), flush=True)
    platform_name = results["device"]["platform"]
    name = "sweep.json" if platform_name == "cpu" else f"sweep_{platform_name}.json"
    path = Path(args.out) if args.out else HERE / "results" / name
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
