#!/usr/bin/env bash
# Multi-process testing through torch.distributed (see tools/dist_launch.sh).
#   tools/dist_test.sh CONFIG CHECKPOINT NPROC [extra tools/test.py args]
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT NPROC [args...]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
shift 3
exec "$(dirname "${BASH_SOURCE[0]}")/dist_launch.sh" test.py "$NPROC" "$CONFIG" "$CHECKPOINT" "$@"
