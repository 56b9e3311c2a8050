#!/usr/bin/env bash
# Run `yololake train` on one node of a cluster job: start this script once per node (Slurm, Kubernetes,
# a PBS/LSF array, or ssh); it works out this node's rank and the rendezvous from the scheduler's
# environment and passes everything else through to `yololake train`.
#
#   srun --nodes 4 --ntasks-per-node 1 scripts/train_node.sh \
#       --data s3://lake/datasets/udacity/v1 --model yolov5s --epochs 100 --batch-size 256 --img 640
#
# Knobs (environment; the scheduler's own variables are used when these are unset):
#   NNODES           number of nodes             (SLURM_JOB_NUM_NODES, else WORLD_SIZE for a Kubernetes
#                                                 PyTorchJob with one pod per node, else 1)
#   NODE_RANK        this node's rank            (SLURM_NODEID, else RANK, else 0)
#   GPUS_PER_NODE    processes per node          (the count of GPUs nvidia-smi lists, else 1)
#   RDZV_HOST        rendezvous host             (first host of SLURM_JOB_NODELIST, else MASTER_ADDR)
#   RDZV_PORT        rendezvous port             (29400; the preflight check uses RDZV_PORT + 1)
#   RDZV_ID          rendezvous id, equal on all nodes (SLURM_JOB_ID, else "yololake")
#   STAGE_DIR        fast local disk for the staged dataset (YOLOLAKE_STAGE_DIR, else ~/.cache/yololake/stage)
#   YOLOLAKE         the launcher command        (yololake from PATH, else .venv/bin/yololake)
#   DRY_RUN=1        print this node's command instead of running it
# Exit code: the launcher's (the trainer's, or 2 for a usage, dataset or preflight error).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
YOLOLAKE="${YOLOLAKE:-$(command -v yololake || echo "$ROOT/.venv/bin/yololake")}"

NNODES="${NNODES:-${SLURM_JOB_NUM_NODES:-${WORLD_SIZE:-1}}}"
NODE_RANK="${NODE_RANK:-${SLURM_NODEID:-${RANK:-0}}}"
if [[ -z "${GPUS_PER_NODE:-}" ]]; then
    GPUS_PER_NODE="$(nvidia-smi --list-gpus 2>/dev/null | wc -l || true)"
    [[ "${GPUS_PER_NODE:-0}" -gt 0 ]] || GPUS_PER_NODE=1
fi
if [[ -z "${RDZV_HOST:-}" && -n "${SLURM_JOB_NODELIST:-}" ]] && command -v scontrol >/dev/null; then
    RDZV_HOST="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
fi
RDZV_HOST="${RDZV_HOST:-${MASTER_ADDR:-}}"
RDZV_PORT="${RDZV_PORT:-29400}"
RDZV_ID="${RDZV_ID:-${SLURM_JOB_ID:-yololake}}"

args=(train --nnodes "$NNODES" --node-rank "$NODE_RANK" --nproc-per-node "$GPUS_PER_NODE")
if [[ "$NNODES" -gt 1 ]]; then
    if [[ -z "$RDZV_HOST" ]]; then
        echo "train_node.sh: NNODES=$NNODES but no rendezvous host: set RDZV_HOST (or MASTER_ADDR)" >&2
        exit 2
    fi
    args+=(--rdzv-endpoint "$RDZV_HOST:$RDZV_PORT" --rdzv-id "$RDZV_ID")
fi
[[ -n "${STAGE_DIR:-}" ]] && args+=(--stage-dir "$STAGE_DIR")
[[ "${DRY_RUN:-0}" == 1 ]] && args+=(--dry-run)

echo "train_node.sh: node $NODE_RANK of $NNODES, $GPUS_PER_NODE process(es) per node, rendezvous ${RDZV_HOST:-standalone}:$RDZV_PORT" >&2
exec "$YOLOLAKE" "${args[@]}" "$@"
