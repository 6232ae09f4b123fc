"""Deep SARSA on the moving-ghost Pacman grid: several seeds at once, curves, animation.

    python examples/deep_sarsa_pacman.py [--seeds 8] [--steps 50000] [--out DIR]

Writes `curve.png` (episode return vs environment steps) and `episode.gif` (the greedy
policy of the best seed) to the output folder.
"""

from _train_and_show import parse, train_and_show

if __name__ == "__main__":
    train_and_show(
        "deep_sarsa", "default", parse(__doc__.splitlines()[0], "Pacman-v0", ["Pacman-v0"])
    )
