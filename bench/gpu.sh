#!/usr/bin/env bash
# The GPU rows, in one device call of at most 10 minutes (Keras 3 on JAX):
#   1. single_vgg's network flat (trees/single_vgg.json, $EPOCHS epochs, its plateau recipe) and
#      then as the branched moravcik tree grown from it (bench/specs/moravcik_vgg_branched.json:
#      the last block, dense and output layers each node's own, 4 joint epochs);
#   2. training throughput (bench/throughput.py): the batch augmentation engine against a plain
#      fit, and the moravcik tree's joint step, with the time left.
# Each model comes back as a tar under $OUT; evaluate them where the full data lives:
#   python bench/saved_models.py --data fer2013.csv.gz --views none,flip flat=single_vgg tree=moravcik_vgg_branched
#
# Prepare here (once): the keras, namex and optree wheels in .whl/ (README of the device tool),
#   python bench/gpu_data.py pack fer2013.csv.gz .gpu/fer2013_training.u8.xz
# then run it through the device tool with carry [".whl", ".gpu"]: bash bench/gpu.sh
# Rehearse on a CPU: GPU_BENCH_EPOCHS=1 GPU_BENCH_PACK=<a packed sample> OUT=<a folder> bash bench/gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/cnntree_gpu_out}
EPOCHS=${GPU_BENCH_EPOCHS:-32}
PACK=${GPU_BENCH_PACK:-.gpu/fer2013_training.u8.xz}
TRAIN_LIMIT_S=${GPU_BENCH_TRAIN_LIMIT_S:-300}
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
mkdir -p "$OUT"
started=$(date +%s)
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SCRATCH/site" .whl/*.whl || exit 1
  export PYTHONPATH="$SCRATCH/site"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
nvidia-smi -L 2>/dev/null
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)" || exit 1
python3 bench/gpu_data.py unpack "$PACK" "$SCRATCH/fer2013_training.csv" || exit 1

echo "== single_vgg flat, $EPOCHS epochs (limit ${TRAIN_LIMIT_S} s)"
timeout "$TRAIN_LIMIT_S" python3 bench/train_models.py --epochs "$EPOCHS" --data "$SCRATCH/fer2013_training.csv" \
  --out "$SCRATCH/models" --work "$SCRATCH/checkpoints" trees/single_vgg.json > "$SCRATCH/models.log" 2>&1
status=$?
echo "flat training ended with status $status after $(( $(date +%s) - started )) s"
if [ -d "$SCRATCH/models/single_vgg" ]; then
  echo "== the branched moravcik tree from it, 4 joint epochs"
  timeout "${GPU_BENCH_TREE_LIMIT_S:-150}" python3 bench/train_models.py --init-from "$SCRATCH/models/single_vgg" \
    --data "$SCRATCH/fer2013_training.csv" --out "$SCRATCH/models" --work "$SCRATCH/checkpoints" \
    bench/specs/moravcik_vgg_branched.json >> "$SCRATCH/models.log" 2>&1
  tree_status=$?
  echo "tree training ended with status $tree_status after $(( $(date +%s) - started )) s"
fi
cp "$SCRATCH/models.log" "$OUT"/
for model in "$SCRATCH"/models/*/; do
  [ -d "$model" ] || continue
  tar -C "$SCRATCH/models" -cf "$OUT/$(basename "$model").tar" "$(basename "$model")"
done
if [ "$status" -ne 0 ] || [ "${tree_status:-0}" -ne 0 ]; then  # cut short: the best weights so far, to finish with --resume elsewhere
  for work in "$SCRATCH"/checkpoints/*/; do
    [ -d "$work" ] && [ ! -d "$SCRATCH/models/$(basename "$work")" ] || continue  # only what did not finish
    tar -C "$SCRATCH/checkpoints" -cf "$OUT/$(basename "$work").work.tar" --exclude='last.keras' "$(basename "$work")"
  done
fi

left=$(( 560 - ($(date +%s) - started) ))
if [ "$left" -gt 60 ]; then
  echo "== throughput ($left s left)"
  timeout $(( left - 15 )) python3 bench/throughput.py --images "${GPU_BENCH_IMAGES:-8192}" --rounds 1 --workers 8 \
    --json "$OUT/throughput_gpu.json"
fi
ls -la "$OUT"
echo "gpu.sh done after $(( $(date +%s) - started )) s"
