"""Pacman-v0: raw stepping beside CartPole-v1, and training throughput of its learners.

    python benchmarks/pacman.py            # about a minute on 2 cores
    python benchmarks/pacman.py --quick    # 1 and 256 environments, short chunks

Prints and writes `benchmarks/results/pacman.json`:
  * raw environment steps per second (random actions, `jit`, vmapped 1 / 256 / 4,096
    environments) of Pacman-v0 and of gymnax CartPole-v1, measured in the same run;
  * training environment steps per second (learning included, compile excluded) of Deep
    SARSA and REINFORCE on Pacman-v0 with 8 vmapped seeds, and as a fraction of the raw
    ceiling at the same total batch.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
from _common import raw_env_throughput

import rljax
from rljax.run import registry

HERE = Path(__file__).resolve().parent
SEEDS = 8


def training_throughput(algo: str, preset: str, steps: int) -> tuple[float, int]:
    """Env steps per second (all seeds) of one compiled chunk of `steps` steps per seed."""
    overrides = {
        "total_env_steps": str(steps),
        "chunk_env_steps": str(steps),
        "stop_return": "none",
    }
    exp = registry.make_experiment(algo, "Pacman-v0", preset, overrides)
    keys = jax.random.split(jax.random.key(0), SEEDS)
    state = jax.jit(jax.vmap(exp.trainer.init))(keys, rljax.tile_hparams(exp.hparams, SEEDS))
    chunk = jax.jit(jax.vmap(exp.trainer.run_chunk)).lower(state).compile()
    jax.block_until_ready(chunk(state))
    t0 = time.perf_counter()
    jax.block_until_ready(chunk(state))
    return SEEDS * steps / (time.perf_counter() - t0), exp.train_config.num_envs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 and 256 envs, short chunks")
    parser.add_argument("--out", default=str(HERE / "results" / "pacman.json"))
    args = parser.parse_args()
    batches, raw_steps = ((1, 256), 4_000) if args.quick else ((1, 256, 4096), 40_000)
    raw = {
        env_id: {str(b): round(raw_env_throughput(env_id, b, raw_steps)) for b in batches}
        for env_id in ("Pacman-v0", "CartPole-v1")
    }
    for env_id, rates in raw.items():
        print(f"{env_id:>12} raw steps/s: " + ", ".join(f"{b}: {r:,}" for b, r in rates.items()))
    training = {}
    for algo, preset in (("deep_sarsa", "default"), ("reinforce", "pacman")):
        if algo not in registry.ALGOS:
            continue
        # A multiple of 16 envs x 100 steps.
        rate, num_envs = training_throughput(algo, preset, 1_600 if args.quick else 16_000)
        ceiling = raw_env_throughput("Pacman-v0", SEEDS * num_envs, raw_steps)
        training[algo] = {
            "seeds": SEEDS,
            "envs_per_seed": num_envs,
            "env_steps_per_second": round(rate),
            "raw_at_same_batch": round(ceiling),
            "fraction_of_raw": round(rate / ceiling, 4),
        }
        print(f"{algo:>12} training: {rate:,.0f} env steps/s ({rate / ceiling:.1%} of raw)")
    results = {
        "command": " ".join(["python", "benchmarks/pacman.py", *sys.argv[1:]]),
        "quick": args.quick,
        "versions": {"rljax": rljax.__version__, "jax": jax.__version__},
        "raw_env_steps_per_second": raw,
        "training": training,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
