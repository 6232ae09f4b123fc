"""Dynamic programming on the course's 5x5 GridWorld: policy iteration step by step, value
iteration.

    python examples/gridworld_dp.py [--gamma 0.9] [--lowest-index] [--out runs/gridworld_dp]

The world of the course's DP lessons (`GridWorldDP-v0`: +1 at the goal, -1 at the traps,
only the goal terminal). Prints the value table and the greedy policy after each
policy-iteration step and saves one picture per step drawn like the course's window: the
value of every cell (traps included), arrows on every cell but the goal, and every tied
best action as its own arrow (the course's improvement spreads the probability equally
over ties; `--lowest-index` takes the lowest-index action instead). Then value iteration,
and a check that both methods agree.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import rljax
from rljax import dp
from rljax.envs.gridworld import ACTION_NAMES, START, render_ascii, render_values, transition_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gamma", type=float, default=0.9)
    parser.add_argument("--lowest-index", action="store_true", help="no tie spreading")
    parser.add_argument("--out", default="runs/gridworld_dp")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spread = not args.lowest_index

    env, params = rljax.make("GridWorldDP-v0")
    P, R, terminal = transition_model(env, params)
    S, A = R.shape
    policy = jnp.full((S, A), 1.0 / A)  # start from the uniform random policy

    for step in range(1, 50):
        V, sweeps = dp.policy_evaluation(P, R, terminal, policy, args.gamma)
        print(f"policy iteration {step}: evaluation took {int(sweeps)} sweeps")
        print(render_ascii(V, policy, terminal), "\n")
        path = out / f"policy_iteration_{step}.png"
        plt.close(render_values(V, policy, path, f"policy iteration, step {step}", terminal))
        new_policy, _ = dp.policy_improvement(P, R, V, args.gamma, spread_ties=spread)
        if step > 1 and np.allclose(np.asarray(new_policy), np.asarray(policy)):
            print(f"policy stable after {step} evaluations")
            break
        policy = new_policy
    start = ", ".join(
        f"{name} {p:.2f}"
        for name, p in zip(ACTION_NAMES, np.asarray(policy)[START], strict=False)
        if p > 0
    )
    print(f"policy at the start cell: {start}")

    vi = dp.value_iteration(P, R, terminal, args.gamma, spread_ties=spread)
    print(f"\nvalue iteration: {int(vi.sweeps)} sweeps")
    print(render_ascii(vi.V, vi.policy, terminal))
    path = out / "value_iteration.png"
    plt.close(render_values(vi.V, vi.policy, path, "value iteration", terminal))
    gap = float(jnp.max(jnp.abs(vi.V - V)))
    print(f"\nmax |V_policy_iteration - V_value_iteration| = {gap:.2e}; pictures in {out}/")


if __name__ == "__main__":
    main()
