"""A tiny benchmark for CI: the entry point end to end in a few seconds.

    python benchmarks/smoke.py --out DIR/smoke.json

Tabular Q-learning on the GridWorld, 64 vmapped seeds x 500 steps, against the plain
NumPy per-step version (2,000 steps), as benchmarks/gridworld.py measures them. Not run by
a plain `python -m benchmarks`; tests/test_benchmarks.py runs it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gridworld import jax_q_learning, numpy_q_learning

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the same (it is always tiny)")
    parser.add_argument("--out", default=str(HERE / "results" / "smoke.json"))
    args = parser.parse_args()
    plain = numpy_q_learning(2_000)
    ours = jax_q_learning(64, 500)
    results = {
        "command": " ".join(["python", "benchmarks/smoke.py", *sys.argv[1:]]),
        "numpy_q_learning_agent_steps_per_second": round(plain),
        "q_learning_64_seeds_agent_steps_per_second": round(ours),
        "over_numpy": round(ours / plain, 2),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
