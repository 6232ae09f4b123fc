"""Deep SARSA on the course's moving-ghost Pacman grid: several seeds at once, curves,
animation.

    python examples/deep_sarsa_pacman.py [--preset course] [--seeds 8] [--steps 50000] [--out DIR]

`--preset course` (the default) is the course's script (`1-grid-world/6-deep-sarsa`):
Glorot-uniform init, the target's next action drawn independently of the one then taken;
`--preset default` is textbook SARSA (the target uses the next action taken) with He init.
Writes `curve.png` (episode return vs environment steps) and `episode.gif` (the greedy
policy of the best seed) to the output folder.
"""

from _train_and_show import parse, train_and_show

if __name__ == "__main__":
    args = parse(
        __doc__.splitlines()[0],
        "Pacman-v0",
        ["Pacman-v0"],
        lambda p: p.add_argument("--preset", default="course", choices=["course", "default"]),
    )
    train_and_show("deep_sarsa", args.preset, args)
