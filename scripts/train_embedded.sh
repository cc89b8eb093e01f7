#!/usr/bin/env bash
# Resumable training of the embedded model on one CPU core (the other stays free for work).
#   scripts/train_embedded.sh VAE_MINUTES LDM_MINUTES
# Each call continues from runs/embedded/checkpoint (full state: optimizer, EMA, RNG). On a fresh
# clone, where runs/ is empty, it continues the LDM from the committed weights of the app's model
# in assets/embedded/ (EMA weights; the optimizer state starts afresh) and skips the VAE.
set -euo pipefail
cd "$(dirname "$0")/.."
vae_min=${1:-18}
ldm_min=${2:-60}
export OMP_NUM_THREADS=1
mkdir -p runs
init=()
if [ ! -f runs/embedded/checkpoint/model_index.json ] && [ -f assets/embedded/model_index.json ]; then
  init=(--init assets/embedded)
  vae_min=0
  # the shipped weights may predate MAM's sync or TLM's onset module: attach them
  # (zero-initialised) to train them
  if ! grep -q '"sync"' assets/embedded/mam/config.json || ! grep -q '"onsets"' assets/embedded/tlm/config.json; then
    rm -rf runs/init_with_modules
    python scripts/attach_modules.py assets/embedded runs/init_with_modules
    init=(--init runs/init_with_modules)
  fi
fi
if [ "$vae_min" != "0" ]; then
  python -m foley_lab train --out runs/embedded --stage vae --data sfx --vae-steps 100000 \
    --minutes "$vae_min" --threads 1 --checkpoint-every 5 >> runs/train_vae.log 2>&1
fi
python -m foley_lab train --out runs/embedded --stage ldm --data sim --steps 1000000 "${init[@]}" \
  --minutes "$ldm_min" --threads 1 --checkpoint-every 5 >> runs/train_ldm.log 2>&1
