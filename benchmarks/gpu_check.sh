#!/usr/bin/env bash
# The native library's checks on a machine with an NVIDIA GPU (a lent GPU machine or a Jetson):
# CMake build with nvcc, ctest, the GPU kernel tests and bench_preproc. Logs go to $OUT (default
# build/gpu-check). Uses what is installed (python3 with numpy, opencv and pytest); installs
# nothing.
#
#   bash benchmarks/gpu_check.sh [CUDA architectures, default: native]
set -u -o pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-build/gpu-check}"
ARCHS="${1:-native}"
mkdir -p "$OUT"
BUILD=build/gpu
status=0
step() { echo "== $*"; }

step "device" | tee "$OUT/device.txt"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nvcc --version | tail -2;
  nproc; python3 -c 'import cv2, numpy; print("opencv", cv2.__version__, "numpy", numpy.__version__)'; } \
  2>&1 | tee -a "$OUT/device.txt"

step "cmake configure + build (CUDA architectures: $ARCHS)"
rm -rf "$BUILD"
{ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" -DEDGE_ENABLE_TRT=OFF &&
  cmake --build "$BUILD" --parallel "$(nproc)"; } >"$OUT/build.log" 2>&1 || { status=1; tail -40 "$OUT/build.log"; }
grep -E "mer-edge native:" "$OUT/build.log"
test -f "$BUILD/libedge_preproc.so" || { echo "libedge_preproc.so was not built"; exit 1; }

step "ctest"
ctest --test-dir "$BUILD" --output-on-failure 2>&1 | tee "$OUT/ctest.log" || status=1

step "pytest -m gpu tests/native"
export MER_EDGE_NATIVE_LIB="$PWD/$BUILD" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PYTHONUNBUFFERED=1 python3 -m pytest -m gpu tests/native -q -p no:cacheprovider 2>&1 |
  tee "$OUT/pytest_gpu.log" || status=1

step "copy_probe (where the host-pointer path's time goes)"
nvcc -O2 -std=c++17 -o "$BUILD/copy_probe" benchmarks/copy_probe.cu >"$OUT/copy_probe.log" 2>&1 &&
  "$BUILD/copy_probe" 2>&1 | tee "$OUT/copy_probe.json" || { status=1; cat "$OUT/copy_probe.log"; }

step "bench_preproc"
python3 -m benchmarks.bench_preproc --lib-dir "$BUILD" --repeats 500 2>&1 |
  tee "$OUT/bench_preproc.json" || status=1
exit $status
