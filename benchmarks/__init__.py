"""rljax's benchmarks: `python -m benchmarks --help` (benchmarks/run.py), `benchmarks/render.py`."""
