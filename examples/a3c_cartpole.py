"""A3C on CartPole-v1: 4 actor-learners with their own environments and stale local
parameters, several seeds at once.

    python examples/a3c_cartpole.py [--seeds 8] [--steps N] [--out DIR]

Each round every learner computes a gradient at its own (possibly stale) copy of the
parameters, and the gradients are applied to the global parameters one by one in a seeded
order (see `rljax/a3c.py`). Each seed stops once its last 20 training episodes average
above 490; the script prints each seed's greedy return and writes `curve.png`.
"""

from _train_and_show import parse, train_and_show

if __name__ == "__main__":
    args = parse(__doc__.splitlines()[0], "CartPole-v1", ["CartPole-v1"])
    train_and_show("a3c", "cartpole", args)
