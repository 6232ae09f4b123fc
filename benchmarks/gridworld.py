"""Tabular RL on the 5x5 GridWorld: Q-learning throughput and value-iteration timing.

    python benchmarks/gridworld.py            # about a minute on 2 cores
    python benchmarks/gridworld.py --quick    # small step counts, a few seconds

Prints a table and writes `benchmarks/results/gridworld.json`:
  * Q-learning agent-steps per second (environment step + epsilon-greedy action + update)
    with 1, 256 and 16,384 vmapped seeds on one device, and 16,384 split across every CPU
    core's device (what `train --seeds` does), against a plain Python/NumPy per-step
    implementation of the same algorithm on the same grid, measured in the same run, all
    compiled with the runner's XLA options, and at 16,384 seeds on one device with XLA's
    default options and with JAX's `rbg` and `unsafe_rbg` keys instead of threefry;
  * value iteration on the exact model: sweeps to converge and microseconds per call once
    compiled, for 1 and 1,024 vmapped discount factors.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import rljax
from rljax import dp, tabular
from rljax.envs.gridworld import transition_model
from rljax.run import loop
from rljax.run.sharding import runs_sharding

HERE = Path(__file__).resolve().parent
HP = tabular.TabularHParams(learning_rate=0.1, gamma=0.9, epsilon=0.1)


def jax_q_learning(
    seeds: int,
    steps: int,
    impl: str = "threefry2x32",
    devices: list | None = None,
    options: dict | None = None,
) -> float:
    """Agent-steps per second of rljax Q-learning, `seeds` runs vmapped, keys of JAX's
    PRNG implementation `impl`; the runs split across `devices` (as `run_batch` and
    `train --seeds` split them across the CPU's cores), or on one device; compiled with
    the runner's XLA options (`loop.compiler_options()`), or `options`."""
    env, params = rljax.make("GridWorld-v0")
    agent = tabular.make_q_learning(tabular.TabularConfig.for_env(env, params))
    config = rljax.TrainConfig(total_env_steps=steps, chunk_env_steps=steps, eval_episodes=1)
    trainer = rljax.make_trainer(agent, env, params, config)
    keys = jax.random.split(jax.random.key(0, impl=impl), seeds)
    kw = {"compiler_options": loop.compiler_options() if options is None else options}
    if devices is not None:
        kw["in_shardings"] = kw["out_shardings"] = runs_sharding(seeds, devices)
    state = jax.jit(jax.vmap(trainer.init), **kw)(keys, rljax.tile_hparams(HP, seeds))
    run = jax.jit(jax.vmap(trainer.run_chunk), **kw).lower(state).compile()
    jax.block_until_ready(run(state))  # warm up
    t0 = time.perf_counter()
    jax.block_until_ready(run(state))
    return seeds * steps / (time.perf_counter() - t0)


def numpy_q_learning(steps: int, seed: int = 0) -> float:
    """Agent-steps per second of a plain per-step Python/NumPy Q-learning on the same grid."""
    env, params = rljax.make("GridWorld-v0")
    P, R, terminal = (np.asarray(x) for x in transition_model(env, params))
    next_state = P.argmax(-1)  # deterministic moves
    rng = np.random.default_rng(seed)
    q = np.zeros(R.shape)
    s, t, limit = 0, 0, int(params.max_steps_in_episode)
    t0 = time.perf_counter()
    for _ in range(steps):
        explore = rng.random() < HP.epsilon
        a = int(rng.integers(q.shape[1])) if explore else int(np.argmax(q[s]))
        s2, r = int(next_state[s, a]), float(R[s, a])
        t += 1
        done = bool(terminal[s2])
        target = r + (0.0 if done else HP.gamma * q[s2].max())
        q[s, a] += HP.learning_rate * (target - q[s, a])
        if done or t >= limit:  # termination, or truncation (which bootstrapped above)
            s, t = 0, 0
        else:
            s = s2
    return steps / (time.perf_counter() - t0)


def value_iteration_timing(num_gammas: int, repeats: int = 20) -> dict:
    env, params = rljax.make("GridWorld-v0")
    P, R, terminal = transition_model(env, params)
    gammas = jnp.linspace(0.5, 0.99, num_gammas)

    def solve(g):
        return dp.value_iteration(P, R, terminal, g)

    f = jax.jit(jax.vmap(solve)).lower(gammas).compile()
    out = jax.block_until_ready(f(gammas))
    t0 = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(f(gammas))
    us = 1e6 * (time.perf_counter() - t0) / repeats
    sweeps = np.asarray(out.sweeps)
    return {
        "discount_factors": num_gammas,
        "sweeps_min": int(sweeps.min()),
        "sweeps_max": int(sweeps.max()),
        "sweeps_at_gamma_0.9": int(dp.value_iteration(P, R, terminal, 0.9).sweeps),
        "microseconds_per_call": round(us, 1),
        "microseconds_per_discount": round(us / num_gammas, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small step counts")
    parser.add_argument("--out", default=str(HERE / "results" / "gridworld.json"))
    args = parser.parse_args()
    scale = 10 if args.quick else 1

    plain = numpy_q_learning(50_000 // scale)
    print(f"plain NumPy Q-learning: {plain:,.0f} agent-steps/s")
    rows = {}
    for seeds, steps in ((1, 20_000), (256, 4_000), (16_384, 400)):
        rate = jax_q_learning(seeds, steps // scale)
        rows[str(seeds)] = {
            "agent_steps_per_second": round(rate),
            "over_numpy": round(rate / plain, 2),
        }
        print(f"rljax Q-learning, {seeds:>6} seeds: {rate:>14,.0f} steps/s ({rate / plain:.1f}x)")
    # Every CPU core (one JAX device each, `rljax.use_cpu_cores`), as `train --seeds` runs.
    cores = jax.devices() if jax.default_backend() == "cpu" and len(jax.devices()) > 1 else None
    every_core = None
    if cores is not None:
        rate = jax_q_learning(16_384, 400 // scale, devices=cores)
        every_core = {
            "devices": len(cores),
            "agent_steps_per_second": round(rate),
            "over_numpy": round(rate / plain, 2),
        }
        print(
            f"rljax Q-learning,  16384 seeds on {len(cores)} CPU devices: {rate:>14,.0f} steps/s"
            f" ({rate / plain:.1f}x)"
        )
    # The same on one device with XLA's default options instead of the runner's (which hand
    # YNNPACK only matrix products and convolutions, and compile at -O1).
    rate = jax_q_learning(16_384, 400 // scale, options={})
    xla_defaults = {"agent_steps_per_second": round(rate), "over_numpy": round(rate / plain, 2)}
    print(f"rljax Q-learning,  16384 seeds, XLA's default options: {rate:>14,.0f} steps/s")
    # JAX's cheaper-looking key implementations, at the largest batch: under `vmap` their
    # bit generator is batched by JAX's own rule, which also ties a run's numbers to the
    # batch it is in (a vmapped seed would no longer equal its unbatched run).
    impls = {}
    for impl in ("rbg", "unsafe_rbg"):
        rate = jax_q_learning(16_384, 400 // scale, impl)
        impls[impl] = {"agent_steps_per_second": round(rate), "over_numpy": round(rate / plain, 2)}
        print(f"rljax Q-learning, 16384 seeds, {impl} keys: {rate:>14,.0f} steps/s")
    vi = [value_iteration_timing(n) for n in (1, 1024)]
    for v in vi:
        print(
            f"value iteration, {v['discount_factors']:>4} discounts: "
            f"{v['microseconds_per_call']} us per call, {v['sweeps_min']}-{v['sweeps_max']} sweeps"
        )
    results = {
        "command": " ".join(["python", "benchmarks/gridworld.py", *sys.argv[1:]]),
        "quick": args.quick,
        "machine": {"platform": platform.platform(), "backend": jax.default_backend()},
        "versions": {"rljax": rljax.__version__, "jax": jax.__version__},
        "numpy_q_learning_agent_steps_per_second": round(plain),
        "q_learning_by_seeds": rows,
        "q_learning_16384_seeds_every_core": every_core,
        "q_learning_16384_seeds_xla_default_options": xla_defaults,
        "q_learning_16384_seeds_other_key_impls": impls,
        "value_iteration": vi,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
