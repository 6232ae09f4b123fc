"""rljax's `course` presets, each on its lesson's world, over many seeds at once.

    python benchmarks/course.py [--lessons sarsa,q_learning,...] [--seeds N]

For each lesson of rlcode/reinforcement-learning-kr (docs/course.md), trains the `course`
preset (and, where it differs in kind, the tuned one) with `run_batch` and records what the
lesson's own script is judged by: whether the greedy policy reaches the goal, the greedy
return, or the course's stopping rule. `benchmarks/course_ports.py` measures the same on
plain-Python ports of the course's scripts. Writes `benchmarks/results/course.json`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

import rljax
from rljax.run import registry
from rljax.run.loop import run_batch

HERE = Path(__file__).resolve().parent

# lesson: (algorithm, world, preset, settings, seeds)
RUNS = {
    "value_iteration": ("value_iteration", "GridWorldDP-v0", "course", {}, 4),
    "policy_iteration": ("policy_iteration", "GridWorldDP-v0", "course", {}, 4),
    "mc_control": ("mc_control", "GridWorld100-v0", "course", {}, 64),
    "mc_control_discounted": ("mc_control", "GridWorld100-v0", "default", {}, 64),
    "sarsa": ("sarsa", "GridWorld100-v0", "course", {}, 64),
    "q_learning": ("q_learning", "GridWorld100-v0", "course", {}, 64),
    "deep_sarsa": ("deep_sarsa", "Pacman-v0", "course", {}, 16),
    "deep_sarsa_default": ("deep_sarsa", "Pacman-v0", "default", {}, 16),
    "reinforce": ("reinforce", "PacmanReinforce-v0", "course", {}, 16),
    "reinforce_tuned": ("reinforce", "Pacman-v0", "pacman", {}, 16),
    "a2c": ("a2c", "CartPole-v1", "course", {}, 16),
    "dqn": ("dqn", "CartPole-v1", "course", {}, 8),
}


def measure(lesson: str, seeds: int | None) -> dict:
    algo, env_id, preset, settings, n = RUNS[lesson]
    n = seeds or n
    exp = registry.make_experiment(algo, env_id, preset, settings)
    keys = jax.random.split(jax.random.key(0), n)
    result = run_batch(exp.trainer, keys, rljax.tile_hparams(exp.hparams, n))
    m = result.metrics
    episodes = np.where(m["episodes"] > 0, m["episodes"], 0).sum(axis=1)
    stop = np.asarray(result.state.stop_step)
    greedy = result.eval_returns.mean(axis=1)
    return {
        "command": f"python -m rljax train {algo} {env_id} --preset {preset}"
        + "".join(f" --set {k}={v}" for k, v in settings.items()),
        "seeds": n,
        "env_steps": exp.train_config.total_env_steps,
        "greedy_return_per_seed": [round(float(g), 3) for g in greedy],
        "episodes_per_seed": [int(e) for e in episodes],
        "stop_step_per_seed": [int(s) for s in stop] if exp.train_config.stop_return else None,
        "compile_seconds": round(result.compile_seconds, 1),
        "train_seconds": round(result.train_seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lessons", default=",".join(RUNS))
    parser.add_argument("--seeds", type=int, default=None)
    args = parser.parse_args()
    out = HERE / "results" / "course.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    for lesson in args.lessons.split(","):
        t0 = time.perf_counter()
        results[lesson] = measure(lesson, args.seeds)
        r = results[lesson]
        print(f"{lesson}: {r['command']}, {r['seeds']} seeds, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
        print(f"  greedy {r['greedy_return_per_seed']}")
        print(f"  episodes {r['episodes_per_seed']}  stop {r['stop_step_per_seed']}")
    results["command"] = "python benchmarks/course.py"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
