#!/usr/bin/env bash
# Multi-process training through torch.distributed (see tools/dist_launch.sh).
#   tools/dist_train.sh CONFIG NPROC [extra tools/train.py args]
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG NPROC [args...]" >&2
    exit 2
fi
CONFIG=$1
NPROC=$2
shift 2
exec "$(dirname "${BASH_SOURCE[0]}")/dist_launch.sh" train.py "$NPROC" "$CONFIG" "$@"
