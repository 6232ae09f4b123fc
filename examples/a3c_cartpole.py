"""A3C on CartPole-v1: 4 actor-learners with their own environments and stale local
parameters, several seeds at once.

    python examples/a3c_cartpole.py [--seeds 8] [--steps N] [--out DIR]
    python examples/a3c_cartpole.py --threaded [--rounds 300]

Each round every learner computes a gradient at its own (possibly stale) copy of the
parameters, and the gradients are applied to the global parameters one by one in a seeded
order (see `rljax/algos/a3c.py`). Each seed stops once its greedy policy averages above
499 over 32 episodes, played every 5,120 steps; the script prints each seed's greedy
return and writes `curve.png`.

`--threaded` instead runs the 4 learners as real Python threads around one lock
(`rljax.algos.a3c_threaded`, one seed, not reproducible) and prints how stale the applied
gradients were and the greedy return of the global parameters.
"""

import argparse

import jax
import numpy as np
from _train_and_show import parse, train_and_show

import rljax
from rljax import a2c, a3c
from rljax.algos.a3c_threaded import train_threaded


def threaded(rounds: int) -> None:
    env, params = rljax.make("CartPole-v1")
    p = a3c.preset("cartpole")
    learners = p.config.num_learners
    print(f"A3C with {learners} threads x {rounds} rounds (4 envs x 8 steps each)")
    result = train_threaded(
        p.config,
        env,
        params,
        p.hparams,
        jax.random.key(0),
        envs_per_learner=p.train_config.num_envs // learners,
        rollout_len=p.train_config.rollout_len,
        rounds_per_learner=rounds,
    )
    stale = result.staleness
    print(f"{result.optimizer_steps} optimizer steps in {result.seconds:.1f} s")
    print(f"staleness of the applied gradients: mean {stale.mean():.2f}, max {stale.max()}")
    order = "".join(str(k) for k in result.learner_of_step[:40])
    print(f"learners in the order their gradients arrived (first 40): {order}")
    agent = a2c.make_a2c(p.config, rljax.env_spec(env, params))
    trainer = rljax.make_trainer(agent, env, params, p.train_config)
    state = a2c.A2CState(result.params, result.opt_state, None, None)
    greedy = jax.jit(trainer.evaluate)(state, jax.random.key(1))
    print(f"greedy return of the global parameters: {float(np.mean(greedy)):.1f} (32 episodes)")


def threaded_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threaded", action="store_true", help="real threads, one seed")
    parser.add_argument("--rounds", type=int, default=300, help="rounds per thread")


if __name__ == "__main__":
    args = parse(__doc__.splitlines()[0], "CartPole-v1", ["CartPole-v1"], threaded_flags)
    if args.threaded:
        threaded(args.rounds)
    else:
        train_and_show("a3c", "cartpole", args)
