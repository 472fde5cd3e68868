#!/usr/bin/env bash
# The GPU check for a short lease: the CUDA tests, per-frame J/F on the device and a whole-set evaluation on
# the device, each checked against CPU values, then one summary. About 3-4 minutes on a recent GPU.
#
#   bash benchmarks/gpu_check.sh            # from the repository root, or from anywhere
#
# Uses the active Python if refbench imports there; else creates .venv-gpu with the machine's packages
# visible (--system-site-packages keeps its CUDA torch) and installs only the project with its test extra.
# Without CUDA it says so, runs the CPU part (the same checks on CPU, small) and exits 0.
# Exit status: 0 when every test passed and every value was identical; 1 otherwise.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/refbench_gpu_check.XXXXXX")"
START=$(date +%s)
status=0

step() { echo "== $* ($(( $(date +%s) - START )) s)"; }

if ! timeout 60 "$PY" -c "import refbench, torch" >/dev/null 2>&1; then
    step "refbench is not importable with $PY: creating .venv-gpu (system site packages, project only)"
    timeout 120 "$PY" -m venv --system-site-packages .venv-gpu
    PY=.venv-gpu/bin/python
    timeout 240 "$PY" -m pip install -q -e ".[test]"
fi

cuda=$(timeout 120 "$PY" -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)
if [ "$cuda" = "1" ]; then
    device=cuda
    gpu=$(timeout 60 "$PY" -c "import torch; print(torch.cuda.get_device_name(0), '| torch', torch.__version__, \
'| CUDA', torch.version.cuda)")
else
    device=cpu
    gpu="no CUDA device (torch.cuda.is_available() is False): CPU part only"
fi
step "device: $gpu"

# 1. the tests marked cuda (the device-parametrised scorer tests on the GPU)
tests_line="skipped (no CUDA device)"
if [ "$device" = "cuda" ]; then
    step "pytest -m cuda"
    set +e
    timeout 150 "$PY" -m pytest -q -m cuda -p no:cacheprovider tests >"$OUT/pytest.txt" 2>&1
    rc=$?
    set -e
    tests_line=$(grep -E "[0-9]+ (passed|failed|error)" "$OUT/pytest.txt" | tail -1 || true)
    [ -n "$tests_line" ] || tests_line="no summary line (exit $rc; see $OUT/pytest.txt)"
    if [ "$rc" -ne 0 ]; then status=1; tail -30 "$OUT/pytest.txt"; fi
fi

# 2. per-frame J and F on the device, against refbench on CPU (vos-benchmark when the bench extra is there)
step "bench_jf.py --device $device"
if [ "$device" = "cuda" ]; then jf_args=(--device cuda --frames 120 --repeats 3 --tile 16); else
    jf_args=(--device cpu --frames 24 --repeats 1 --peer cpu); fi
set +e
timeout 120 "$PY" benchmarks/bench_jf.py "${jf_args[@]}" >"$OUT/bench_jf.txt" 2>&1
rc=$?
set -e
cat "$OUT/bench_jf.txt"
if [ "$rc" -ne 0 ]; then status=1; fi
jf_same=$(awk '$NF=="True"||$NF=="False"{n++; if($NF=="True")t++} END{print (n>0 && t==n) ? "True" : "False"}' \
    "$OUT/bench_jf.txt")
jf_480=$(awk '$1 ~ /^480x/ {print $(NF-2)}' "$OUT/bench_jf.txt")
[ "$jf_same" = "True" ] || status=1

# 3. a whole-set evaluation on the device, values against the CPU run of the same files
step "bench_eval.py --device $device"
if [ "$device" = "cuda" ]; then eval_args=(--fraction 0.02 --device cuda --skip-official --processes 4); else
    eval_args=(--fraction 0.02 --device cpu --skip-official --processes 1); fi
set +e
timeout 150 "$PY" benchmarks/bench_eval.py "${eval_args[@]}" --workdir "$OUT/eval" >"$OUT/bench_eval.txt" 2>&1
rc=$?
set -e
cat "$OUT/bench_eval.txt"
if [ "$rc" -ne 0 ]; then status=1; fi
eval_same=$(grep -q "identical to the CPU run: True" "$OUT/bench_eval.txt" && echo True || echo False)
eval_png=$(awk '/refbench eval \(PNG/ {print $(NF-1)}' "$OUT/bench_eval.txt" | tail -1)
eval_rle=$(awk '/refbench eval \(RLE/ {print $(NF-1)}' "$OUT/bench_eval.txt" | tail -1)
[ "$eval_same" = "True" ] || status=1

echo
echo "==================== refbench GPU check ===================="
echo "device:                     $gpu"
echo "cuda tests:                 $tests_line"
echo "per-frame J/F on $device:     identical to the peer: $jf_same; 480p: ${jf_480:-?} frame-pairs/s (masks resident)"
echo "whole set on $device:         identical to the CPU run: $eval_same; PNG ${eval_png:-?} frames/s, RLE ${eval_rle:-?} frames/s"
echo "elapsed:                    $(( $(date +%s) - START )) s; logs in $OUT"
echo "result:                     $([ "$status" -eq 0 ] && echo OK || echo FAILED)"
if [ "$device" = "cpu" ]; then echo "no CUDA: the GPU part did not run (CPU part only)"; fi
exit "$status"
