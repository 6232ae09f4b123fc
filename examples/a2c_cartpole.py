"""A2C on CartPole-v1: 16 vectorised actors per seed, several seeds at once.

    python examples/a2c_cartpole.py [--seeds 8] [--steps N] [--out DIR]

Each seed stops once its greedy policy averages above 499 over 32 episodes, played every
5,120 steps (the `cartpole` preset's rule, `stop_on="greedy"`); the script prints each
seed's greedy return and writes `curve.png` (episode return vs environment steps).
"""

from _train_and_show import parse, train_and_show

if __name__ == "__main__":
    args = parse(__doc__.splitlines()[0], "CartPole-v1", ["CartPole-v1"])
    train_and_show("a2c", "cartpole", args)
