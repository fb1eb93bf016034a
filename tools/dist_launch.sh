#!/usr/bin/env bash
# Shared torchrun launcher behind tools/dist_train.sh and tools/dist_test.sh:
#   tools/dist_launch.sh TOOL NPROC [args passed to TOOL ...]
# With CUDA each process takes one GPU (nccl); on a CPU machine the processes
# use the gloo backend (clipdense.engine.dist.prepare_distributed).
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT. Interpreter: CLIPDENSE_PYTHON
# (default: the repository's .venv, else `python` on PATH).
set -euo pipefail
TOOL=$1
NPROC=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${CLIPDENSE_PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python; fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "$PY" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" --master_port="$PORT" \
    "$ROOT/tools/$TOOL" "$@" --launcher pytorch
