"""DQN on CartPole-v1: solve rate, wall time, vmap scaling, compile time, peers.

    python benchmarks/dqn_cartpole.py                 # ours only (about 3 minutes on 2 cores)
    python benchmarks/dqn_cartpole.py --peers         # also rejax, Stable-Baselines3 and the
                                                      # PyTorch course port (bash
                                                      # benchmarks/peers/setup.sh first)
    python benchmarks/dqn_cartpole.py --quick         # 2 seeds, 5,000 steps: a smoke run

Prints a table and writes `benchmarks/results/dqn_cartpole.json`. Every ratio is measured in
this one run, since the machine is shared and noisy:
  * default preset, 1 seed and `--seeds` seeds in one `jit(vmap(train))`: compile and
    training seconds, the N-seed / 1-seed ratios (vmap scaling);
  * default preset, `--seeds` seeds through the runner, as `train --seeds N` runs them
    (chunks, finished runs leave the batch, split across every CPU core): wall time and each
    seed's greedy return (32 episodes), the figures compared with the peers;
  * raw gymnax CartPole-v1 stepping at the same batch (random actions), as the ceiling that
    training throughput is compared with;
  * the lecture preset for `--lecture-seeds` seeds through the runner (`run_batch`, as
    `train --seeds` runs them: seeds that met the course's stopping rule leave the batch),
    until every seed stopped (or the step limit), in two fresh processes sharing a new
    persistent compilation cache: cold (everything compiled), then warm (loaded);
  * with `--peers`: rejax 0.1.3's DQN with its CartPole config (`--rejax-seeds`, default 8,
    on the same jax as rljax), Stable-Baselines3's DQN with rl-zoo's CartPole-v1
    hyperparameters (`--sb3-seeds` trained, the rest extrapolated) and a per-step PyTorch
    port of the course script (1 seed), each in its own virtual environment (bash
    benchmarks/peers/setup.sh).
"""

from __future__ import annotations

import argparse
import dataclasses
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
from _common import raw_env_throughput, run_peer

import rljax
from rljax import dqn
from rljax.run import loop, registry
from rljax.run.sharding import resolve_devices

HERE = Path(__file__).resolve().parent


def timed_train(preset: dqn.Preset, seeds: int, seed: int = 0) -> dict:
    """Compile and run `jit(vmap(train))` for `seeds` seeds; return timings and results."""
    env, env_params = rljax.make("CartPole-v1")
    agent = dqn.make_dqn(preset.config, rljax.env_spec(env, env_params))
    train = rljax.make_train(agent, env, env_params, preset.train_config)
    keys = jax.random.split(jax.random.key(seed), seeds)
    hparams = rljax.tile_hparams(preset.hparams, seeds)
    t0 = time.perf_counter()
    compiled = jax.jit(jax.vmap(train)).lower(keys, hparams).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(keys, hparams))
    train_s = time.perf_counter() - t0
    eval_mean = np.asarray(out.eval_returns).mean(axis=1)
    steps = np.asarray(out.state.env_steps)
    stop = np.asarray(out.state.stop_step)
    return {
        "seeds": seeds,
        "compile_seconds": round(compile_s, 2),
        "train_seconds": round(train_s, 2),
        "wall_seconds": round(compile_s + train_s, 2),
        "env_steps_per_seed": steps.tolist(),
        "env_steps_per_second": round(float(steps.sum()) / train_s),
        # The batch runs until its slowest seed stops: cost of one step of the whole batch.
        "microseconds_per_batch_step": round(1e6 * train_s / float(steps.max()), 1),
        "eval_return_per_seed": eval_mean.round(1).tolist(),
        "seeds_at_least_475": int((eval_mean >= 475).sum()),
        "stop_step_per_seed": stop.tolist(),
    }


def timed_run_batch(preset_name: str, seeds: int, steps: int | None = None) -> dict:
    """The same through the product's runner (`rljax.run.loop.run_batch`: chunks, runs that
    met their stopping rule leave the batch, split across every CPU core), as `train
    --seeds` runs it."""
    over = {"total_env_steps": str(steps)} if steps else {}
    exp = registry.make_experiment("dqn", "CartPole-v1", preset_name, over)
    keys = jax.random.split(jax.random.key(0), seeds)
    t0 = time.perf_counter()
    result = loop.run_batch(exp.trainer, keys, rljax.tile_hparams(exp.hparams, seeds))
    wall = time.perf_counter() - t0
    eval_mean = np.asarray(result.eval_returns).mean(axis=1)
    return {
        "seeds": seeds,
        "runner": "rljax.run.loop.run_batch (finished runs leave the batch)",
        "devices": len(resolve_devices("auto", seeds) or [None]),
        "compile_seconds": round(result.compile_seconds, 2),
        "train_seconds": round(result.train_seconds, 2),
        "wall_seconds": round(wall, 2),
        "batch_sizes": list(result.batch_sizes),  # as compacted, in order
        "env_steps_per_seed": np.asarray(result.state.env_steps).tolist(),
        "eval_return_per_seed": eval_mean.round(1).tolist(),
        "seeds_at_least_475": int((eval_mean >= 475).sum()),
        "stop_step_per_seed": np.asarray(result.state.stop_step).tolist(),
    }


LECTURE_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
from rljax.run.cache import enable_compile_cache
enable_compile_cache(sys.argv[2])
from dqn_cartpole import timed_run_batch
steps = int(sys.argv[4]) or None
print(json.dumps(timed_run_batch("lecture", int(sys.argv[3]), steps)))
"""


def lecture_cold_and_warm(seeds: int, steps: int | None) -> tuple[dict, dict]:
    """The lecture preset's batch of `seeds` runs in two fresh processes that share a new
    persistent compilation cache, as `train --seeds N` runs it the first time on a machine
    (compiling every batch size it shrinks to) and every later time (loading them)."""
    out = []
    with tempfile.TemporaryDirectory() as cache:
        for _ in range(2):
            done = subprocess.run(
                [sys.executable, "-c", LECTURE_SCRIPT, str(HERE), cache, str(seeds),
                 str(steps or 0)],
                capture_output=True, text=True, check=True,
                env={k: v for k, v in os.environ.items() if k != "RLJAX_NO_COMPILE_CACHE"},
            )  # fmt: skip
            v = json.loads(done.stdout.strip().splitlines()[-1])
            stops = np.array(v["stop_step_per_seed"])
            v["seeds_stopped"] = int((stops >= 0).sum())
            v["median_stop_step"] = (
                float(np.median(stops[stops >= 0])) if v["seeds_stopped"] else None
            )
            out.append(v)
    out[0]["compile_cache"] = "empty (a new folder): every program compiled"
    out[1]["compile_cache"] = "the folder the first process filled: programs loaded"
    return out[0], out[1]


def shrink(preset: dqn.Preset, steps: int) -> dqn.Preset:
    """`preset` with a budget of `steps` env steps (for --quick)."""
    return preset._replace(
        train_config=dataclasses.replace(preset.train_config, total_env_steps=steps)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--lecture-seeds", type=int, default=64)
    parser.add_argument("--peers", action="store_true")
    parser.add_argument("--rejax-seeds", type=int, default=8, help="rejax seeds with --peers")
    parser.add_argument(
        "--sb3-seeds", type=int, default=2, help="SB3 seeds trained with --peers (extrapolated)"
    )
    parser.add_argument("--quick", action="store_true", help="2 seeds, 5,000 steps: a smoke run")
    parser.add_argument("--out", default=str(HERE / "results" / "dqn_cartpole.json"))
    args = parser.parse_args()

    default = dqn.preset("default")
    if args.quick:
        args.seeds, args.lecture_seeds, args.rejax_seeds, args.sb3_seeds = 2, 2, 2, 1
        default = shrink(default, 5_000)
    print(f"DQN default preset, {default.train_config.total_env_steps:,} env steps per seed")
    one = timed_train(default, 1)
    print(f"  1 seed:  compile {one['compile_seconds']} s, train {one['train_seconds']} s")
    whole = timed_train(default, args.seeds)
    print(f"  {args.seeds} seeds, one jit(vmap(train)): train {whole['train_seconds']} s")
    # What `train --seeds N` runs: chunks, finished runs leave the batch, every CPU core.
    many = timed_run_batch("default", args.seeds, 5_000 if args.quick else None)
    print(
        f"  {args.seeds} seeds, runner: compile {many['compile_seconds']} s, train "
        f"{many['train_seconds']} s, greedy returns {many['eval_return_per_seed']}"
    )
    batch = default.train_config.num_envs
    raw_steps = 2_000 if args.quick else 20_000
    raw_one = raw_env_throughput("CartPole-v1", batch, raw_steps)
    raw_many = raw_env_throughput("CartPole-v1", batch * args.seeds, raw_steps)
    print(f"DQN lecture preset, {args.lecture_seeds} seeds, until every seed stopped")
    lec, lec_warm = lecture_cold_and_warm(args.lecture_seeds, 5_000 if args.quick else None)
    for label, v in (("cold", lec), ("warm cache", lec_warm)):
        print(
            f"  {label}: compile {v['compile_seconds']} s, train {v['train_seconds']} s, "
            f"wall {v['wall_seconds']} s, {v['seeds_stopped']}/{args.lecture_seeds} met the "
            f"stopping rule (median step {v['median_stop_step']}), batch sizes {v['batch_sizes']}"
        )

    results = {
        "command": " ".join(["python", "benchmarks/dqn_cartpole.py", *sys.argv[1:]]),
        "quick": args.quick,
        "machine": {
            "platform": platform.platform(),
            "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()],
        },
        "versions": {"rljax": rljax.__version__, "jax": jax.__version__},
        "default_1_seed": one,
        f"default_{args.seeds}_seeds": many,
        f"whole_program_{args.seeds}_seeds": whole,
        "vmap_wall_ratio": round(whole["train_seconds"] / one["train_seconds"], 2),
        "vmap_step_cost_ratio": round(
            whole["microseconds_per_batch_step"] / one["microseconds_per_batch_step"], 2
        ),
        "raw_env_steps_per_second": {
            f"batch_{batch}": round(raw_one),
            f"batch_{batch * args.seeds}": round(raw_many),
        },
        "training_over_raw_env": {
            "1_seed": round(one["env_steps_per_second"] / raw_one, 4),
            f"{args.seeds}_seeds": round(whole["env_steps_per_second"] / raw_many, 4),
        },
        f"lecture_{args.lecture_seeds}_seeds": lec,
        f"lecture_{args.lecture_seeds}_seeds_warm_cache": lec_warm,
    }

    if args.peers:
        print("peers")
        n = args.rejax_seeds
        steps = str(default.train_config.total_env_steps)
        rejax = run_peer(
            "rejax", "rejax_dqn.py", "--seeds", str(n), "--steps", steps, "--no-train-eval"
        )
        sb3_args = ["--algo", "dqn", "--seeds", str(args.seeds), "--train-seeds"]
        sb3_args += [str(args.sb3_seeds)] + (["--steps", "2000"] if args.quick else [])
        sb3 = run_peer("sb3", "sb3_cartpole.py", *sb3_args)
        torch_args = ["--seed", "0"] + (["--max-steps", "3000"] if args.quick else [])
        torch_lec = run_peer("torch", "torch_lecture_dqn.py", *torch_args)
        results["peers"] = {
            f"rejax_{n}_seeds": rejax,
            "sb3_dqn": sb3,
            "torch_lecture_1_seed": torch_lec,
        }
        if rejax:
            rejax_wall = rejax["compile_seconds"] + rejax["train_seconds"]
            results[f"wall_ratio_ours_{args.seeds}_seeds_over_rejax_{n}_seeds"] = round(
                many["wall_seconds"] / rejax_wall, 3
            )
            if n == 1:
                results["wall_ratio_ours_1_seed_over_rejax_1_seed"] = round(
                    one["wall_seconds"] / rejax_wall, 3
                )
        if torch_lec:
            for name, v in (("", lec), ("_warm_cache", lec_warm)):
                key = f"wall_ratio_lecture_{args.lecture_seeds}_seeds{name}_over_torch_1_seed"
                results[key] = round(v["wall_seconds"] / torch_lec["train_seconds"], 3)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if "ratio" in k or "over" in k}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
