#!/usr/bin/env bash
# Creates or refreshes the project virtual environment (.venv) for clipdense.
#
# Called by `make test` / `make quickstart`; safe to run by hand. It is
# idempotent: when the requirement files, the torch choice and the Python are
# unchanged since the last successful run, it returns at once.
#
# Variables (all optional):
#   PYTHON            interpreter used to create the venv          (python3)
#   VENV              where the venv lives                          (.venv)
#   TORCH_SPEC        torch/torchvision requirement, e.g. for CUDA  (requirements/torch.txt)
#   TORCH_INDEX_URL   extra index for torch, e.g. https://download.pytorch.org/whl/cu124
#   CLIPDENSE_CACHE   where built mmcv wheels are kept              (~/.cache/clipdense)
#   MAX_JOBS          compiler jobs for the mmcv build              (all cores)
#
# mmcv 2.1.0 is the newest mmcv that mmseg 1.2.2 / mmdet 3.3.0 accept and PyPI
# only has its sdist. Building it on current torch needs three things (see
# the environment notes): setuptools<70 and no build isolation (its setup.py
# imports pkg_resources and torch), C++20 instead of its hard-coded C++17 when
# torch >= 2.10, and MMCV_WITH_OPS=1. The wheel is cached per
# (mmcv, torch, CUDA, python) so that a machine builds it once.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python3}
VENV=${VENV:-$ROOT/.venv}
TORCH_SPEC=${TORCH_SPEC:-$(grep -vE '^\s*(#|$)' requirements/torch.txt | xargs)}
TORCH_INDEX_URL=${TORCH_INDEX_URL:-}
CACHE=${CLIPDENSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clipdense}
JOBS=${MAX_JOBS:-$(nproc 2>/dev/null || echo 2)}
MMCV_VERSION=2.1.0

say() { echo "[clipdense setup] $*"; }
die() {
    echo "" >&2
    echo "[clipdense setup] ERROR: $*" >&2
    exit 1
}

# ---------------------------------------------------------------- preflight
command -v "$PYTHON" >/dev/null 2>&1 ||
    die "'$PYTHON' not found. Install Python >= 3.9 or run 'make test PYTHON=/path/to/python3'."
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' ||
    die "clipdense needs Python >= 3.9; '$PYTHON' is $("$PYTHON" -V 2>&1)."
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null ||
    die "'$PYTHON' has no venv/ensurepip module. On Debian/Ubuntu: apt-get install python3-venv."

want=$( {
    cat requirements/*.txt setup.py tools/setup_env.sh
    echo "$TORCH_SPEC|$TORCH_INDEX_URL"
    "$PYTHON" -c 'import sys; print(sys.version)'
} | sha256sum | cut -c1-32)
stamp="$VENV/.clipdense-setup"
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "environment $VENV is up to date"
    exit 0
fi

# -------------------------------------------------------------------- venv
pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ -x "$VENV/bin/python" ]; then
    vver=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)
    if [ "$vver" != "$pyver" ]; then
        say "existing $VENV uses Python $vver, want $pyver: recreating it"
        rm -rf "$VENV"
    else
        say "set-up of $VENV is outdated or was interrupted: refreshing it"
    fi
fi
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV with $("$PYTHON" -V 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip --disable-pip-version-check)
rm -f "$stamp"

# ------------------------------------------------------------------- torch
say "installing $TORCH_SPEC${TORCH_INDEX_URL:+ from $TORCH_INDEX_URL} (first time: about a minute)"
# shellcheck disable=SC2086
"${PIP[@]}" install -q $TORCH_SPEC ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} ||
    die "could not install '$TORCH_SPEC'. Pick another build with TORCH_SPEC=... (and TORCH_INDEX_URL=... for CUDA wheels)."

# -------------------------------------------------------------------- mmcv
tinfo=$("$VPY" - <<'EOF'
import sys, torch
v = torch.__version__.split('+')[0]
cu = torch.version.cuda if torch.cuda.is_available() and torch.version.cuda else 'cpu'
major, minor = (int(p) for p in v.split('.')[:2])
print(v, 'cu' + cu.replace('.', '') if cu != 'cpu' else 'cpu',
      '%d.%d' % sys.version_info[:2], int((major, minor) >= (2, 10)))
EOF
)
read -r torch_v cuda_tag py_v need_cxx20 <<<"$tinfo"
key="mmcv${MMCV_VERSION}-torch${torch_v}-${cuda_tag}-py${py_v}"
installed_key=$(cat "$VENV/.mmcv-key" 2>/dev/null || true)
if [ "$installed_key" = "$key" ] && "$VPY" -c 'import mmcv.ops' 2>/dev/null; then
    say "mmcv $MMCV_VERSION already installed for $key"
else
    whl_dir="$CACHE/wheels/$key"
    whl=$(ls "$whl_dir"/mmcv-*.whl 2>/dev/null | head -n1 || true)
    if [ -z "$whl" ]; then
        command -v g++ >/dev/null 2>&1 || command -v c++ >/dev/null 2>&1 ||
            die "no C++ compiler found; mmcv $MMCV_VERSION must be compiled. Install one (Debian/Ubuntu: apt-get install g++; Fedora: dnf install gcc-c++) and re-run."
        "$VPY" -c 'import os, sysconfig; p = sysconfig.get_paths()["include"]; raise SystemExit(0 if os.path.exists(os.path.join(p, "Python.h")) else 1)' ||
            die "Python headers (Python.h) are missing; mmcv must be compiled against them. Install them (Debian/Ubuntu: apt-get install python3-dev) and re-run."
        "${PIP[@]}" install -q -r requirements/build.txt
        build=$(mktemp -d "${TMPDIR:-/tmp}/clipdense-mmcv.XXXXXX")
        log="$build/build.log"
        say "building mmcv $MMCV_VERSION for $key with $JOBS jobs (once per machine, about 8 minutes on 2 cores); log: $log"
        "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$build" >"$log" 2>&1 ||
            { tail -n 20 "$log" >&2; die "could not download the mmcv $MMCV_VERSION sdist from PyPI (see $log)."; }
        tar -xzf "$build"/mmcv-"$MMCV_VERSION".tar.gz -C "$build"
        src="$build/mmcv-$MMCV_VERSION"
        if [ "$need_cxx20" = 1 ]; then
            grep -q -- '-std=c++17' "$src/setup.py" ||
                die "mmcv setup.py no longer contains -std=c++17; the C++20 patch in tools/setup_env.sh needs updating."
            sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
        fi
        (cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS="$JOBS" "${PIP[@]}" wheel --no-build-isolation --no-deps -w "$build/dist" . >>"$log" 2>&1) || {
            grep -E 'error|Error' "$log" | tail -n 15 >&2 || true
            die "building mmcv $MMCV_VERSION failed (full log: $log). Check the compiler (g++ >= 10 for C++20), the Python headers and free disk space."
        }
        mkdir -p "$CACHE/wheels"
        # Publish the cache entry atomically: a killed build never leaves a
        # half-written wheel where the next run would trust it.
        part="$whl_dir.partial.$$"
        rm -rf "$part" && mkdir -p "$part" && cp "$build"/dist/mmcv-*.whl "$part"/
        rm -rf "$whl_dir" && mv "$part" "$whl_dir"
        rm -rf "$build"
        whl=$(ls "$whl_dir"/mmcv-*.whl | head -n1)
        say "cached $whl"
    else
        say "using cached mmcv wheel $whl"
    fi
    "${PIP[@]}" install -q --no-deps --force-reinstall "$whl"
    echo "$key" >"$VENV/.mmcv-key"
fi

# ---------------------------------------------------------- the rest + us
say "installing OpenMMLab, open_clip and clipdense (editable)"
"${PIP[@]}" install -q -r requirements/mminstall.txt -r requirements/runtime.txt -r requirements/tests.txt
"${PIP[@]}" install -q --no-build-isolation --no-deps -e .
"$VPY" -c 'import clipdense, mmcv.ops, mmseg.models, mmdet.models' ||
    die "the environment was installed but 'import clipdense' failed (see above)."
echo "$want" >"$stamp"
say "done: $VENV ($("$VPY" -c 'import torch, mmcv, mmseg, mmdet; print("torch", torch.__version__, "mmcv", mmcv.__version__, "mmseg", mmseg.__version__, "mmdet", mmdet.__version__)'))"
