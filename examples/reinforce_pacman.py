"""REINFORCE on the moving-ghost Pacman grid (or --env CartPole-v1): several seeds at once.

    python examples/reinforce_pacman.py [--env CartPole-v1] [--seeds 8] [--steps N] [--out DIR]

Writes `curve.png` (episode return vs environment steps) and, on Pacman, `episode.gif`
(the greedy policy of the best seed) to the output folder.
"""

from _train_and_show import parse, train_and_show

if __name__ == "__main__":
    args = parse(__doc__.splitlines()[0], "Pacman-v0", ["Pacman-v0", "CartPole-v1"])
    train_and_show("reinforce", "pacman" if args.env == "Pacman-v0" else "cartpole", args)
