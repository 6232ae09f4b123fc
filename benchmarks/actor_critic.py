"""A2C and A3C on CartPole-v1: training throughput beside the raw environment, and time
to solve with 8 seeds.

    python benchmarks/actor_critic.py            # a few minutes on 2 cores
    python benchmarks/actor_critic.py --peers    # also Stable-Baselines3's A2C (rl-zoo
                                                 # settings; bash benchmarks/peers/setup.sh)
    python benchmarks/actor_critic.py --quick    # throughput at 1 and 16 actors only

Prints and writes `benchmarks/results/actor_critic.json`:
  * for 1, 16, 256 and 1,024 actors (one seed): raw gymnax CartPole-v1 steps per second
    (random actions, `jit`, that many environments vmapped) and A2C's and A3C's training
    environment steps per second (learning included, compile excluded), measured in the
    same run, with training / raw as a ratio. A3C splits the actors among 4 learners
    (1 learner for 1 actor);
  * the `cartpole` presets with 8 vmapped seeds until every seed met its stopping rule
    (last 20 training episodes above 490): compile and training seconds, the step at
    which each seed stopped, and each seed's greedy return (solved: >= 475);
  * with `--peers`: Stable-Baselines3's A2C with rl-zoo's CartPole-v1 hyperparameters in
    its own virtual environment, `--sb3-seeds` trained and the rest extrapolated.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np
from _common import raw_env_throughput, run_peer

import rljax
from rljax.run import registry
from rljax.run.loop import run_batch

HERE = Path(__file__).resolve().parent
ACTORS = (1, 16, 256, 1024)
ROLLOUT = 8  # steps per actor between updates (the presets' n)


def training_throughput(algo: str, actors: int, steps: int) -> float:
    """Env steps per second of one compiled chunk of `steps` steps (one seed, no stop)."""
    overrides = {
        "num_envs": str(actors),
        "rollout_len": str(ROLLOUT),
        "total_env_steps": str(steps),
        "chunk_env_steps": str(steps),
        "stop_return": "none",
    }
    if algo == "a3c":
        overrides["num_learners"] = str(min(4, actors))
    exp = registry.make_experiment(algo, "CartPole-v1", "cartpole", overrides)
    keys = jax.random.split(jax.random.key(0), 1)
    state = jax.jit(jax.vmap(exp.trainer.init))(keys, rljax.tile_hparams(exp.hparams, 1))
    chunk = jax.jit(jax.vmap(exp.trainer.run_chunk)).lower(state).compile()
    jax.block_until_ready(chunk(state))
    t0 = time.perf_counter()
    jax.block_until_ready(chunk(state))
    return steps / (time.perf_counter() - t0)


def time_to_solve(algo: str, seeds: int) -> dict:
    exp = registry.make_experiment(algo, "CartPole-v1", "cartpole")
    keys = jax.random.split(jax.random.key(0), seeds)
    t0 = time.perf_counter()
    result = run_batch(exp.trainer, keys, rljax.tile_hparams(exp.hparams, seeds))
    total = time.perf_counter() - t0
    greedy = result.eval_returns.mean(axis=1)
    stop = np.asarray(result.state.stop_step)
    return {
        "seeds": seeds,
        "compile_seconds": round(result.compile_seconds, 1),
        "train_seconds": round(result.train_seconds, 1),
        "total_seconds_with_eval": round(total, 1),
        "stop_step_per_seed": stop.tolist(),
        "greedy_return_per_seed": [round(float(g), 1) for g in greedy],
        "solved": int(np.sum(greedy >= 475)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="throughput, 1 and 16 actors")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--peers", action="store_true", help="also Stable-Baselines3's A2C")
    parser.add_argument("--sb3-seeds", type=int, default=2, help="SB3 seeds trained")
    parser.add_argument("--out", default=str(HERE / "results" / "actor_critic.json"))
    args = parser.parse_args()

    throughput = {}
    for actors in ACTORS[:2] if args.quick else ACTORS:
        steps = max(actors * ROLLOUT * 16, 2_048 if args.quick else 20_480)
        raw = raw_env_throughput("CartPole-v1", actors, steps)
        row = {"raw_env_steps_per_second": round(raw)}
        for algo in ("a2c", "a3c"):
            rate = training_throughput(algo, actors, steps)
            row[algo] = {
                "env_steps_per_second": round(rate),
                "fraction_of_raw": round(rate / raw, 4),
            }
        throughput[str(actors)] = row
        print(
            f"{actors:>5} actors: raw {raw:>12,.0f}  a2c {row['a2c']['env_steps_per_second']:>10,}"
            f" ({row['a2c']['fraction_of_raw']:.1%})  a3c {row['a3c']['env_steps_per_second']:>10,}"
            f" ({row['a3c']['fraction_of_raw']:.1%}) env steps/s"
        )
    results = {
        "command": " ".join(["python", "benchmarks/actor_critic.py", *sys.argv[1:]]),
        "quick": args.quick,
        "versions": {"rljax": rljax.__version__, "jax": jax.__version__},
        "rollout_len": ROLLOUT,
        "a3c_learners": "4 (1 for a single actor)",
        "throughput": throughput,
    }
    if not args.quick:
        results["time_to_solve"] = {}
        for algo in ("a2c", "a3c"):
            r = time_to_solve(algo, args.seeds)
            results["time_to_solve"][algo] = r
            print(
                f"{algo}: {r['solved']}/{r['seeds']} seeds greedy >= 475; compile "
                f"{r['compile_seconds']} s + training {r['train_seconds']} s; stopped at "
                f"{r['stop_step_per_seed']}"
            )
    if args.peers:
        sb3_args = ["--algo", "a2c", "--seeds", str(args.seeds), "--train-seeds"]
        sb3_args += [str(args.sb3_seeds)] + (["--steps", "2000"] if args.quick else [])
        results["peers"] = {"sb3_a2c": run_peer("sb3", "sb3_cartpole.py", *sb3_args)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
