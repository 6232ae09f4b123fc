"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import jax

import rljax

PEERS = Path(__file__).resolve().parent / "peers"


def raw_env_throughput(env_id: str, batch: int, steps: int = 20_000) -> float:
    """Env steps per second of `env_id` under `jit`, `batch` environments vmapped, random
    actions, auto-reset included: the ceiling training throughput is compared with."""
    env, params = rljax.make(env_id)
    num_actions = env.action_space(params).n

    def run(key):
        _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, batch), params)

        def step(carry, key):
            state, total = carry
            k_act, k_step = jax.random.split(key)
            action = jax.random.randint(k_act, (batch,), 0, num_actions)
            _, state, reward, *_ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(k_step, batch), state, action, params
            )
            return (state, total + reward.sum()), None

        n = max(1, steps // batch)
        return jax.lax.scan(step, (state, 0.0), jax.random.split(key, n))[0][1]

    f = jax.jit(run).lower(jax.random.key(0)).compile()
    jax.block_until_ready(f(jax.random.key(1)))
    t0 = time.perf_counter()
    jax.block_until_ready(f(jax.random.key(2)))
    return max(1, steps // batch) * batch / (time.perf_counter() - t0)


def run_peer(peer: str, script: str, *args: str) -> dict | None:
    """Run `peers/script` in `peers/.venv-<peer>`; its last stdout line is a JSON object.

    Returns that object with the command added, or None (with a note printed) where the
    venv is missing (bash benchmarks/peers/setup.sh makes it) or the script fails."""
    python = PEERS / f".venv-{peer}" / "bin" / "python"
    if not python.exists():
        print(f"  (skipped: {python} missing; run bash benchmarks/peers/setup.sh {peer})")
        return None
    cmd = [str(python), str(PEERS / script), *args]
    shown = " ".join([f"benchmarks/peers/.venv-{peer}/bin/python", f"benchmarks/peers/{script}"])
    shown = " ".join([shown, *args])
    print("  $", shown, flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"  (failed: {done.stderr.strip().splitlines()[-1:]})")
        return None
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["command"] = shown
    return result
