#!/usr/bin/env bash
# The whole GPU check of nalu-np in one command: the GPU tests of both GPU backends, then the CPU-vs-GPU
# benchmark with the issue's targets.
#
#     bash bench/gpu_check.sh [OUTDIR [bench/gpu.py options...]]   # OUTDIR: default $OUT, else bench/results
#
# Expected machine: one NVIDIA H100 (80 GB), 16 CPU cores, no network.  Preinstalled for the Python that
# runs this (PYTHON, default python3): numpy, cupy (cupy-cuda12x), numba with numba-cuda, PyTorch with CUDA
# (the optional peer), pytest and hypothesis (for the tests), matplotlib (for the plot).  Nothing is
# installed from the network: the package is staged without dependencies into a temporary directory
# (nalu_np/ plus kernels/ as nalu_np.kernels, the layout pip would install) and put on PYTHONPATH.
#
# Budget: the tests take a few minutes (mostly JIT / NVRTC compilation of the per-size kernels), the benchmark
# a few more (the CPU contenders at the large shapes dominate); the whole call should stay under 10 minutes.
#
# Writes to OUTDIR: env.txt (versions, nvidia-smi), pytest.txt and pytest.xml (tests), gpu.json, gpu.md and
# gpu.png (benchmark).  Exit status: 0 when the tests pass and the benchmark ran; 1 otherwise (the
# benchmark still runs when tests fail, so that one call gives every result).
set -u -o pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-${OUT:-$repo/bench/results}}"
[ $# -gt 0 ] && shift
py="${PYTHON:-python3}"
mkdir -p "$out"
cd "$repo"
unset NUMBA_ENABLE_CUDASIM  # real device only; bench/gpu.py refuses to time under the simulator

site="$(mktemp -d)"
trap 'rm -rf "$site"' EXIT
cp -r nalu_np "$site/nalu_np"
rm -rf "$site/nalu_np/kernels"
cp -r kernels "$site/nalu_np/kernels"
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"

status=0
{
    date -u
    nvidia-smi || echo "nvidia-smi: not available"
    "$py" - <<'EOF'
import importlib, platform
print("python", platform.python_version())
for mod in ("numpy", "cupy", "numba", "numba_cuda", "torch", "pytest", "hypothesis", "matplotlib"):
    try:
        m = importlib.import_module(mod)
        print(f"{mod} {getattr(m, '__version__', '?')}")
    except Exception as err:  # noqa: BLE001
        print(f"{mod}: NOT AVAILABLE ({type(err).__name__}: {err})")
import nalu_np
print("nalu_np", nalu_np.__version__, "from", nalu_np.__file__)
print("available backends:", nalu_np.available_backends())
EOF
} 2>&1 | tee "$out/env.txt"

echo "== GPU tests: pytest -m gpu --gpu tests/gpu tests/kernels (both backends, every unit)"
if "$py" -c "import pytest, hypothesis" 2>/dev/null; then
    "$py" -m pytest -m gpu --gpu tests/gpu tests/kernels -q -rs --durations=10 -p no:cacheprovider --junitxml="$out/pytest.xml" 2>&1 \
        | tee "$out/pytest.txt"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
    if grep -q "skipped" "$out/pytest.txt"; then
        echo "GPU tests were skipped: a backend cannot run on this machine (reasons above)"
        status=1
    fi
else
    echo "pytest and hypothesis are not installed for $py: GPU tests NOT RUN" | tee "$out/pytest.txt"
    status=1
fi

echo "== benchmark: bench/gpu.py"
"$py" bench/gpu.py --json "$out/gpu.json" --markdown "$out/gpu.md" --plot "$out/gpu.png" "$@" 2>&1 \
    | tee "$out/bench.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

echo "== results in $out (exit status $status)"
exit "$status"
