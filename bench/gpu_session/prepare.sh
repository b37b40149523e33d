#!/usr/bin/env bash
# On the CPU machine, from the repository root, before a session's device call:
#   bash bench/gpu_session/prepare.sh            # then: run(command="bash bench/gpu_session/run.sh",
#                                                #          carry=[".gpu-audit", ".gpu-lib"], timeout_s=590)
# Puts into two ignored folders what the call needs beside the checkout (64 MiB in all):
#   .gpu-audit  the shared kit (../shared/gpu-check: NVDEC checks + PyAV and PyNvVideoCodec wheels,
#               torchcodec's dropped), its stages adapted to this package (see sitecustomize.py)
#   .gpu-lib    the previews library's clips (bench/library; film grain and the HDR clips' SDR masters
#               left out to fit), its library.json and its previews.jsonl without the missing clips
set -euo pipefail
[ -d .git ] && [ -f bench/gpu_session/run.sh ] || { echo "run this from the repository root"; exit 1; }
bash ../shared/gpu-check/prepare.sh .gpu-audit
rm -f .gpu-audit/wheels/torchcodec-*.whl
mkdir -p .gpu-audit/alias
cp bench/gpu_session/sitecustomize.py .gpu-audit/alias/
python3 - <<'PY'
from pathlib import Path
kit = Path(".gpu-audit/api_check.py")
text = kit.read_text()
# the kit names two functions of engine.device that this project keeps in engine.decode.nvdec_caps
swaps = [
    ('    emit(st, "project\'s view (engine.device)", cuda=str(device.cuda_status()), nvdec=str(device.nvdec_status()))',
     '    import engine.decode.nvdec_caps as caps_module\n'
     '    emit(st, "project\'s view (engine.device)", cuda=str(device.cuda_status()), nvdec=str(caps_module.nvdec_status()))'),
    ("    import engine.device as device\n\n    rows = device.nvdec_codecs(0)",
     "    import engine.decode.nvdec_caps as device\n\n    rows = device.nvdec_codecs(True)"),
]
for old, new in swaps:
    if old not in text:
        raise SystemExit(f"the kit changed: cannot adapt {old.strip()[:60]!r}; look at .gpu-audit/api_check.py")
    text = text.replace(old, new)
kit.write_text(text)
script = Path(".gpu-audit/gpu_check.sh").read_text()
start, end = script.index("run_stage torchcodec"), script.index('step "done;')
script = script[:start] + script[end:]  # the project's gpu-check runs its own pytest and doctor
old = 'export PYTHONPATH="$SITE:$PWD:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"'
if old not in script:
    raise SystemExit("the kit changed: cannot set its PYTHONPATH; look at .gpu-audit/gpu_check.sh")
script = script.replace(old, 'export PYTHONPATH="$HERE/alias:/tmp/shim:$SITE:$PWD:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"')
Path(".gpu-audit/kit_stages.sh").write_text(script)
PY
grep -qxF "/.gpu-lib/" .git/info/exclude || echo "/.gpu-lib/" >> .git/info/exclude
[ -f bench/library/library.json ] || .venv/bin/python -m bench.make_library --preset previews
rm -rf .gpu-lib && mkdir .gpu-lib
for f in bench/library/*.mp4; do
  case $(basename "$f") in film_grain*|*sdr-master*) ;; *) cp "$f" .gpu-lib/ ;; esac
done
cp bench/library/library.json .gpu-lib/
python3 - <<'PY'
import json, os
lines = [json.loads(l) for l in open("bench/library/previews.jsonl")]
keep = [l for l in lines if os.path.exists(".gpu-lib/" + l["input"])]
open(".gpu-lib/previews.jsonl", "w").write("".join(json.dumps(l) + "\n" for l in keep))
print(f".gpu-lib: {len(keep)} of {len(lines)} library jobs")
PY
du -sh .gpu-audit .gpu-lib
