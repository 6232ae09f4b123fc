"""The course's algorithms, one module each: its Config (static), HParams (traced), State,
`make_<algo>` returning an `Agent`, and its presets."""

from rljax.algos import a2c, a3c, deep_sarsa, dp, dqn, reinforce, tabular

__all__ = ["a2c", "a3c", "deep_sarsa", "dp", "dqn", "reinforce", "tabular"]
