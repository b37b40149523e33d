#!/usr/bin/env bash
# One device call, from the repository root (bench/gpu_session/prepare.sh first, on the CPU machine):
#   run(command="bash bench/gpu_session/run.sh", carry=[".gpu-audit", ".gpu-lib"], timeout_s=590)
# 1. the shared kit's NVDEC checks (.gpu-audit/kit_stages.sh: env, caps, clips, raw, p016, containers,
#    adapter, bench), KIT_BUDGET s (default 150)
# 2. `python -m bench.gpu_check` (make gpu-check: pytest -m gpu, doctor, parity, reuse, processes, bench)
# 3. the previews library through `engine run` on --device cuda (the GPU node, default processes) and
#    --device cpu (16 processes), results with stage seconds per job; then both paths' outputs scored
#    against the source (bench/gpu_session/score_paths.py), while LIMIT s (default 560) last.
# Comes back in $OUT: session.txt, kit/results.jsonl, kit/log.txt, gpu-check-<device>.json/.md,
# lib/cuda.jsonl, lib/cpu.jsonl, lib/scores.jsonl (8 files: the most a call brings back).
set -u
export PYTHONUNBUFFERED=1
T0=$SECONDS
LIMIT=${LIMIT:-560}
mkdir -p "$OUT/kit" "$OUT/lib"
exec > >(tee -a "$OUT/session.txt") 2>&1
echo "cores $(nproc)"; nvidia-smi -L; grep -E "MemTotal" /proc/meminfo
mkdir -p /tmp/shim/animated_previews && touch /tmp/shim/animated_previews/__init__.py
for n in engine kernels cli; do ln -sfn "$PWD/$n" "/tmp/shim/animated_previews/$n"; done

echo "=== [$((SECONDS-T0)) s] kit stages"
GPU_AUDIT_BUDGET=${KIT_BUDGET:-150} OUT="$OUT/kit" timeout -k 5 $((${KIT_BUDGET:-150} + 40)) bash .gpu-audit/kit_stages.sh > /dev/null 2>&1
echo "kit rc=$? at $((SECONDS-T0)) s, $(grep -c . "$OUT/kit/results.jsonl") findings"

export PYTHONPATH=/tmp/gpu-audit-site  # the kit installed PyAV and PyNvVideoCodec there
echo "=== [$((SECONDS-T0)) s] make gpu-check"
timeout -k 5 ${GPU_CHECK_TIMEOUT:-300} python3 -m bench.gpu_check --budget ${GPU_CHECK_BUDGET:-270} --results-dir "$OUT"
echo "gpu-check rc=$? at $((SECONDS-T0)) s"

export PYTHONPATH=/tmp/shim:/tmp/gpu-audit-site:$PWD:$PWD/tests
engine() { python3 -c 'import sys; sys.argv = ["engine"] + sys.argv[1:]; from animated_previews.cli.main import main; main()' "$@"; }
for dev in cuda cpu; do
  left=$((LIMIT - (SECONDS - T0)))
  [ "$left" -lt 30 ] && { echo "library on $dev: skipped, $left s left"; continue; }
  echo "=== [$((SECONDS-T0)) s] library on $dev"
  workers=$([ "$dev" = cpu ] && echo "--workers $(nproc)" || true)
  t=$(date +%s.%N)
  timeout -k 5 "$left" bash -c "$(declare -f engine); engine run --batch .gpu-lib/previews.jsonl --out-dir /tmp/lib-$dev --no-store --device $dev $workers --results $OUT/lib/$dev.jsonl" > "/tmp/lib-$dev.log" 2>&1
  echo "library on $dev rc=$? wall $(python3 -c "import time; print(round(time.time() - $t, 2))") s"; tail -3 "/tmp/lib-$dev.log"
done
left=$((LIMIT - (SECONDS - T0) - 10))
if [ "$left" -ge 20 ] && [ -d /tmp/lib-cuda ] && [ -d /tmp/lib-cpu ]; then
  echo "=== [$((SECONDS-T0)) s] scores ($left s)"
  pids=()
  for k in $(seq 0 11); do  # each shard appends whole lines to one file, so a cut-short run keeps what was scored
    SHARD=$k/12 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 timeout -k 2 "$left" python3 bench/gpu_session/score_paths.py \
      "$OUT/lib/scores.jsonl" cuda=/tmp/lib-cuda cpu=/tmp/lib-cpu > "/tmp/score-$k.log" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"  # not a bare wait: that would wait for the tee above too, which ends only with this script
  echo "$(grep -c . "$OUT/lib/scores.jsonl") outputs scored"; tail -2 /tmp/score-0.log
fi
echo "=== [$((SECONDS-T0)) s] done"
