"""Run benchmarks by name, record where and how each ran, and render RESULTS.md from the JSON.

    python -m benchmarks                    # every benchmark, full size, with peers (hours)
    python -m benchmarks --quick            # small budgets, no peers (a few minutes)
    python -m benchmarks gridworld pacman   # some of them (names: --list)
    python -m benchmarks --render           # only re-render RESULTS.md and the plots
    python benchmarks/run.py ...            # the same

Each benchmark is its script under benchmarks/, run as a subprocess with its flags, writing
DIR/<name>.json (`--results DIR`; default benchmarks/results, or runs/benchmarks-quick with
`--quick`, so a smoke run never overwrites the measured figures). To each JSON the runner
adds a `meta` record: date, machine (platform, CPU count, device kind), the versions of
rljax, jax, flax, optax, gymnax and of every peer used, the exact command and its wall time.
Then `render.py` writes the page (benchmarks/RESULTS.md for benchmarks/results, else
DIR/RESULTS.md) and the PNG plots beside the JSON. Peers (rejax, Stable-Baselines3, the
PyTorch course port) run in their own venvs: `bash benchmarks/peers/setup.sh` first; a
missing peer is skipped and its figures show as "not measured".

`--quick` over every benchmark leaves out `sweep`, `breakout`, `course` and `course_ports`
(owned elsewhere; small runs of them take minutes): name them to run them small. `smoke`
(a few seconds, for CI) runs only when named.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import render  # noqa: E402  (benchmarks/ is not a package on `python benchmarks/run.py`)

QUICK_RESULTS = ROOT / "runs" / "benchmarks-quick"
PEER_PACKAGES = {
    "rejax": ("rejax", "jax", "flax", "optax", "gymnax"),
    "sb3": ("stable-baselines3", "torch", "gymnasium"),
    "torch": ("torch", "gymnasium", "numpy"),
}


class Bench(NamedTuple):
    script: str
    full: tuple[str, ...] = ()  # flags of the full run
    quick: tuple[str, ...] = ("--quick",)  # flags of a quick run
    peers: tuple[str, ...] = ()  # peer venvs its full run uses
    in_quick_all: bool = True  # run by a plain `--quick`


BENCHMARKS = {
    "smoke": Bench("smoke.py", in_quick_all=False),
    "dqn_cartpole": Bench("dqn_cartpole.py", ("--peers",), peers=("rejax", "sb3", "torch")),
    "actor_critic": Bench("actor_critic.py", ("--peers",), peers=("sb3",)),
    "gridworld": Bench("gridworld.py"),
    "pacman": Bench("pacman.py"),
    "runner_overhead": Bench("runner_overhead.py"),
    "sweep": Bench("sweep.py", peers=("rejax",), in_quick_all=False),
    "breakout": Bench(
        "breakout.py",
        quick=("--algos", "dqn", "--seeds", "2", "--steps", "20000"),
        in_quick_all=False,
    ),
    "course": Bench("course.py", quick=("--seeds", "2"), in_quick_all=False),
    "course_ports": Bench("course_ports.py", quick=("--seeds", "2"), in_quick_all=False),
}


def available() -> dict[str, Bench]:
    """The benchmarks whose script exists (breakout.py may not)."""
    return {k: b for k, b in BENCHMARKS.items() if (HERE / b.script).exists()}


def script_flags(script: Path) -> set[str]:
    """Which of --quick / --out / --peers the script's argparse takes (read from its source,
    which is quicker than starting it with --help)."""
    text = script.read_text()
    return {flag for flag in ("--quick", "--out", "--peers") if f'"{flag}"' in text}


def versions(packages: tuple[str, ...], python: str | None = None) -> dict[str, str]:
    """Installed versions of `packages`, in this interpreter or in another venv's."""
    if python is None:
        out = {}
        for p in packages:
            try:
                out[p] = version(p)
            except PackageNotFoundError:
                out[p] = render.NOT_RECORDED
        return out
    code = (
        "import json,sys\nfrom importlib.metadata import version\n"
        "print(json.dumps({p: version(p) for p in sys.argv[1:]}))"
    )
    done = subprocess.run(
        [python, "-c", code, *packages], capture_output=True, text=True, check=False
    )
    return json.loads(done.stdout) if done.returncode == 0 else {}


def machine() -> dict:
    import jax

    device = jax.devices()[0]
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
    }


def run_one(name: str, bench: Bench, quick: bool, results: Path) -> Path:
    """Run one benchmark script; add the `meta` record to its JSON; return its path."""
    script = HERE / bench.script
    flags = script_flags(script)
    args = list(bench.quick if quick else bench.full)
    args = [a for a in args if a in flags or a not in ("--quick", "--peers")]
    out = results / f"{name}.json"
    if "--out" in flags:
        args += ["--out", str(out)]
    cmd = [sys.executable, str(script), *args]
    shown = shlex.join(["python", f"benchmarks/{bench.script}", *args])
    if "--out" in flags and out.resolve().is_relative_to(ROOT):
        shown = shown.replace(shlex.quote(str(out)), os.path.relpath(out.resolve(), ROOT))
    print(f"== {name}: {shown}", flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if "--out" not in flags:  # the script writes benchmarks/results/<name>.json itself
        written = HERE / "results" / f"{name}.json"
        if written.resolve() != out.resolve():
            out.write_text(written.read_text())
    data = json.loads(out.read_text())
    peers = {}
    if not quick:
        for peer in bench.peers:
            python = HERE / "peers" / f".venv-{peer}" / "bin" / "python"
            if python.exists():
                peers[peer] = versions(PEER_PACKAGES[peer], str(python))
    data["meta"] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "versions": versions(render.LIBRARIES),
        "peer_versions": peers,
        "command": shown,
        "entry_point": shlex.join(["python", "-m", "benchmarks", *sys.argv[1:]]),
        "wall_seconds": round(wall, 1),
        "quick": quick,
    }
    out.write_text(json.dumps(data, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> None:
    benches = available()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"of: {', '.join(benches)}")
    parser.add_argument("--quick", action="store_true", help="small budgets, no peers")
    parser.add_argument("--results", default=None, help="folder for the JSON files and plots")
    parser.add_argument("--render", action="store_true", help="only render the page")
    parser.add_argument("--no-images", action="store_true", help="skip the PNG plots")
    parser.add_argument("--list", action="store_true", help="list the benchmarks")
    args = parser.parse_args(argv)
    if args.list:
        for name, b in benches.items():
            print(f"{name:16} benchmarks/{b.script} {' '.join(b.full)}")
        return
    unknown = [n for n in args.names if n not in benches]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {', '.join(benches)}")
    default = QUICK_RESULTS if args.quick else render.RESULTS
    results = Path(args.results) if args.results else default
    results.mkdir(parents=True, exist_ok=True)
    if not args.render:
        names = args.names or [
            n for n, b in benches.items() if n != "smoke" and (b.in_quick_all or not args.quick)
        ]
        t0 = time.perf_counter()
        for name in names:
            run_one(name, benches[name], args.quick, results)
        print(f"ran {', '.join(names)} in {time.perf_counter() - t0:.0f} s")
    page = render.render(results, images=not args.no_images)
    print(f"wrote {page}")


if __name__ == "__main__":
    main()
