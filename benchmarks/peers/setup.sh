#!/usr/bin/env bash
# Creates the two peer-baseline virtual environments beside this script:
#   .venv-rejax  rejax 0.1.3 with a jax/gymnax/flax/optax/distrax set under which its DQN runs
#   .venv-torch  PyTorch 2.13.0 (CPU build), numpy, gymnasium
# Neither touches the project's own .venv. A venv that already imports its pinned
# packages is left alone, so running this twice is cheap.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"

# rejax 0.1.3 calls gymnax's 5-value step API (obs, state, reward, done, info), which
# gymnax 1.x replaced; gymnax 0.0.9 still has it. distrax 0.1.5 pulls in
# tensorflow-probability's JAX substrate, and TFP 0.25 goes with the jax 0.4.3x line.
REJAX_PINS=(
    rejax==0.1.3
    gymnax==0.0.9
    jax==0.4.35
    jaxlib==0.4.35
    flax==0.10.2
    optax==0.2.4
    chex==0.1.87
    distrax==0.1.5
    tensorflow-probability==0.25.0
    numpy==2.4.6
    scipy==1.17.1
    ml-dtypes==0.6.0
)

# Exactly torch==2.13.0: that CPU wheel is on this machine's disk; any other torch
# spec makes pip download a multi-GB CUDA build.
TORCH_PINS=(torch==2.13.0 numpy gymnasium)

# check_venv DIR PKG==VER...: the venv's python exists and has each package at its pin
# (a package given without a version only has to be installed).
check_venv() {
    local dir="$1"
    shift
    [[ -x "$dir/bin/python" ]] || return 1
    "$dir/bin/python" - "$@" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import PackageNotFoundError, version

for spec in sys.argv[1:]:
    name, _, want = spec.partition("==")
    try:
        have = version(name)
    except PackageNotFoundError:
        sys.exit(1)
    if want and have.split("+")[0] != want:
        sys.exit(1)
PY
}

# make_venv DIR IMPORTS PKG...: (re)creates DIR unless it already works.
make_venv() {
    local dir="$1" imports="$2"
    shift 2
    if check_venv "$dir" "$@" && "$dir/bin/python" -c "import $imports" >/dev/null 2>&1; then
        echo "ok: $dir already set up"
        return
    fi
    echo "creating $dir"
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --upgrade pip
    "$dir/bin/python" -m pip install --quiet "$@"
    check_venv "$dir" "$@"
    "$dir/bin/python" -c "import $imports"
    echo "done: $dir"
}

make_venv "$HERE/.venv-rejax" "rejax, gymnax, distrax, jax" "${REJAX_PINS[@]}"
make_venv "$HERE/.venv-torch" "torch, gymnasium, numpy" "${TORCH_PINS[@]}"
