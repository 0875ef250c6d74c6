# Sourced by benchmarks/gpu_check*.sh: install the gpu-kit wheels into /tmp/site and set the offline
# environment. Needs ROOT and the caller's log/die; honours GPU_KIT (default $ROOT/.gpu-kit).
KIT=${GPU_KIT:-$ROOT/.gpu-kit}
[ -d "$KIT/.whl" ] || die "$KIT/.whl not found: copy ../shared/gpu-kit to .gpu-kit and run make-wheels.sh"

log "installing $(ls "$KIT"/.whl/*.whl | wc -l) kit wheels into /tmp/site"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  "$KIT"/.whl/*.whl || die "pip install of the kit failed"
export PYTHONPATH=$ROOT/src:/tmp/site
export PATH=/tmp/site/bin:$PATH
export DISABLE_VERSION_CHECK=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export HF_HOME=/tmp/hf_home ODA_SFT_HOME=/tmp/oda_sft_home WANDB_MODE=disabled PYTHONUNBUFFERED=1
# torchrun is what LLaMA-Factory calls for more than one GPU; give it one if the image has none.
if ! command -v torchrun >/dev/null 2>&1; then
  printf '#!/bin/sh\nexec python3 -m torch.distributed.run "$@"\n' > /tmp/site/bin/torchrun
  chmod +x /tmp/site/bin/torchrun
fi
nvidia-smi --query-gpu=name,memory.total,memory.free,driver_version --format=csv || log "nvidia-smi failed"
