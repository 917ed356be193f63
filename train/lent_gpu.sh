#!/bin/bash
# One call of a lent GPU (docs/training.md, "Sizing a run to a budget"): MNIST from the gzipped raw
# files carried in .gpu/, `python -m train.budget "$@"` writing into gpu_out/, and the weights and
# logs packed as tar files into $OUT (what comes back). Example, as the device command:
#   bash train/lent_gpu.sh --minutes 6.5 --steps 40 --logs gpu_out/logs \
#     "pixel-gpt --class-dropout 0.1 --batch-size 128 --lr 2e-3 --bf16 --device cuda --data-dir data --out gpu_out"
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD  # in place of `pip install -e .`
mkdir -p data/MNIST/raw gpu_out
for f in .gpu/*.gz; do gunzip -c "$f" > "data/MNIST/raw/$(basename "$f" .gz)"; done
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -m train.budget "$@" 2>&1 | tee "$OUT/driver.log"
cd gpu_out || exit 1
tar cf "$OUT/logs.tar" logs
for model in */; do
  [ "$model" = "logs/" ] || tar cf "$OUT/${model%/}.tar" "${model%/}"  # one file each: at most 8 come back
done
ls -la "$OUT"
