"""The host-side runner's cost: a chunked run into a folder against one jitted `train` call.

    python benchmarks/runner_overhead.py            # about a minute on 2 cores
    python benchmarks/runner_overhead.py --quick    # 4,000 steps in 16 chunks

Both run the same DQN experiment (default preset without its stopping rule, 4 seeds,
20,000 steps, 80 chunks of 250 steps). The runner adds, per chunk, a host round trip, one
`metrics.csv` row per seed and progress output, and a checkpoint every 10 chunks. Prints
and writes `benchmarks/results/runner_overhead.json`. Both are warmed up first, so
compile time is excluded from both.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import jax

import rljax
from rljax.run import folders, registry

HERE = Path(__file__).resolve().parent
SEEDS = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4,000 steps in 16 chunks")
    parser.add_argument("--out", default=str(HERE / "results" / "runner_overhead.json"))
    args = parser.parse_args()
    steps = 4_000 if args.quick else 20_000
    exp = registry.make_experiment(
        "dqn", "CartPole-v1", overrides={"total_env_steps": str(steps), "stop_return": "none"}
    )
    train = rljax.make_train(exp.agent, exp.env, exp.env_params, exp.train_config)
    keys = jax.random.split(jax.random.key(0), SEEDS)
    hparams = rljax.tile_hparams(exp.hparams, SEEDS)
    one_call = jax.jit(jax.vmap(train)).lower(keys, hparams).compile()
    jax.block_until_ready(one_call(keys, hparams))  # warm
    t0 = time.perf_counter()
    jax.block_until_ready(one_call(keys, hparams))
    single = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        # A complete warm-up run: compiles chunk and evaluation, imports matplotlib.
        folders.run_in_folder(exp, Path(tmp) / "warm", SEEDS, checkpoint_every=10)
        t0 = time.perf_counter()
        summary = folders.run_in_folder(exp, Path(tmp) / "run", SEEDS, checkpoint_every=10)
        chunked = time.perf_counter() - t0 - summary["compile_seconds"]
    results = {
        "command": " ".join(["python", "benchmarks/runner_overhead.py", *sys.argv[1:]]),
        "quick": args.quick,
        "seeds": SEEDS,
        "env_steps_per_seed": steps,
        "chunks": exp.train_config.num_chunks,
        "one_jitted_call_seconds": round(single, 3),
        "runner_seconds_incl_eval_and_files": round(chunked, 3),
        "runner_train_loop_seconds": summary["train_seconds"],
        "overhead_ratio_train_loop": round(summary["train_seconds"] / single, 3),
        "overhead_ratio_total": round(chunked / single, 3),
    }
    print(json.dumps(results, indent=2))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
