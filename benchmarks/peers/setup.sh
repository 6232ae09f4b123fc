#!/usr/bin/env bash
# Creates the peer-baseline virtual environments beside this script (git-ignored), one per
# peer; the library and its tests never need them:
#   .venv-rejax  rejax 0.1.3 on the SAME jax, jaxlib, flax, optax, gymnax and chex versions
#                as the project's own .venv (read from it, then pinned here)
#   .venv-sb3    Stable-Baselines3 with PyTorch 2.13.0 (CPU build) and gymnasium
#   .venv-torch  PyTorch 2.13.0 (CPU build), numpy, gymnasium: the course DQN's port
# None touches the project's .venv. A venv that already has its pins and imports is left
# alone, so running this twice is cheap. Usage: bash benchmarks/peers/setup.sh [NAME ...]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
PROJECT_PY="${PROJECT_PY:-$ROOT/.venv/bin/python}"

# The versions rljax resolves to, read from the project venv (make install first).
project_pins() {
    "$PROJECT_PY" - "$@" <<'PY'
import sys
from importlib.metadata import version

print(" ".join(f"{name}=={version(name)}" for name in sys.argv[1:]))
PY
}

# Exactly torch==2.13.0: that CPU wheel is on this machine's disk; any other torch
# spec makes pip download a multi-GB CUDA build.
TORCH=torch==2.13.0

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

setup_rejax() {
    # rejax 0.1.3 calls gymnax's old 5-value step; rejax_dqn.py adapts gymnax 1.x's step
    # to it, so rejax runs on exactly the jax stack rljax runs on.
    # shellcheck disable=SC2046
    make_venv "$HERE/.venv-rejax" "rejax, gymnax, distrax, jax" rejax==0.1.3 \
        $(project_pins jax jaxlib flax optax gymnax chex numpy)
}

setup_sb3() {
    make_venv "$HERE/.venv-sb3" "stable_baselines3, torch, gymnasium" "$TORCH" \
        stable-baselines3==2.9.2 gymnasium
}

setup_torch() {
    make_venv "$HERE/.venv-torch" "torch, gymnasium, numpy" "$TORCH" numpy gymnasium
}

for name in "${@:-rejax sb3 torch}"; do
    for one in $name; do
        "setup_$one"
    done
done
