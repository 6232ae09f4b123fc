"""Dynamic programming on the 5x5 GridWorld: policy iteration step by step, value iteration.

    python examples/gridworld_dp.py [--gamma 0.9] [--out runs/gridworld_dp]

Prints the value table and greedy policy after each policy-iteration step (as the lessons
show them) and saves one picture per step, then the value-iteration result, and checks
that both methods agree.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import rljax
from rljax import dp
from rljax.envs.gridworld import render_ascii, render_values, transition_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gamma", type=float, default=0.9)
    parser.add_argument("--out", default="runs/gridworld_dp")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    env, params = rljax.make("GridWorld-v0")
    P, R, terminal = transition_model(env, params)
    S, A = R.shape
    policy = jnp.full((S, A), 1.0 / A)  # start from the uniform random policy

    for step in range(1, 50):
        V, sweeps = dp.policy_evaluation(P, R, terminal, policy, args.gamma)
        print(f"policy iteration {step}: evaluation took {int(sweeps)} sweeps")
        print(render_ascii(V, policy, terminal), "\n")
        fig = render_values(V, policy, out / f"policy_iteration_{step}.png", f"step {step}")
        plt.close(fig)
        new_policy, _ = dp.policy_improvement(P, R, V, args.gamma)
        if step > 1 and np.array_equal(np.asarray(new_policy), np.asarray(policy)):
            print(f"policy stable after {step} evaluations")
            break
        policy = new_policy

    vi = dp.value_iteration(P, R, terminal, args.gamma)
    print(f"\nvalue iteration: {int(vi.sweeps)} sweeps")
    print(render_ascii(vi.V, vi.policy, terminal))
    plt.close(render_values(vi.V, vi.policy, out / "value_iteration.png", "value iteration"))
    gap = float(jnp.max(jnp.abs(vi.V - V)))
    print(f"\nmax |V_policy_iteration - V_value_iteration| = {gap:.2e}; pictures in {out}/")


if __name__ == "__main__":
    main()
