#!/usr/bin/env bash
# Creates or refreshes the project virtual environment (.venv) for clipdense.
#
# Called by `make test` / `make quickstart`; safe to run by hand from any
# directory. It is idempotent: when the requirement files, the torch choice and
# the Python are unchanged since the last successful run, it returns at once.
#
# Variables (all optional; relative paths are taken from the directory the
# script is started in, which is the repository root under `make`):
#   PYTHON            interpreter used to create the venv          (python3)
#   VENV              where the venv lives                          (<repo>/.venv)
#   TORCH_SPEC        torch/torchvision requirement, e.g. for CUDA  (requirements/torch.txt)
#   TORCH_INDEX_URL   extra index for torch, e.g. https://download.pytorch.org/whl/cu124
#   CLIPDENSE_CACHE   where built mmcv wheels are kept              (~/.cache/clipdense)
#   MAX_JOBS          compiler jobs for the mmcv build              (all cores)
#   CLIPDENSE_SETUP_HOOKS  a bash file sourced after the step functions are
#                     defined; the set-up's own tests use it to replace the
#                     expensive steps (venv, pip, compiling) with stubs.
#
# mmcv 2.1.0 is the newest mmcv that mmseg 1.2.2 / mmdet 3.3.0 accept and PyPI
# only has its sdist. Building it on current torch needs three things (see
# the environment notes): setuptools<70 and no build isolation (its setup.py
# imports pkg_resources and torch), C++20 instead of its hard-coded C++17 when
# torch >= 2.10, and MMCV_WITH_OPS=1. The old setuptools would clash with
# torch's own requirement (setuptools>=77.0.3), so the wheel is compiled in a
# throw-away build venv that holds the build tools and sees torch through a
# path file; the user's venv never gets them. The wheel is cached per
# (mmcv, torch, CUDA, python) so that a machine builds it once.
#
# pip's output goes to log files (shown when a step fails); what a successful
# set-up prints is this script's own progress lines.
set -euo pipefail

say() { echo "[clipdense setup] $*"; }
die() {
    echo "" >&2
    echo "[clipdense setup] ERROR: $*" >&2
    exit 1
}

# ------------------------------------------------- paths, resolved once here
# Everything below uses absolute paths: later steps change directory (the
# mmcv build runs inside its unpacked sdist), where a relative VENV or cache
# path would point somewhere else.
abspath() {
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s\n' "$PWD/$1" ;;
    esac
}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
case "$PYTHON" in */*) PYTHON=$(abspath "$PYTHON") ;; esac
VENV=$(abspath "${VENV:-$ROOT/.venv}")
VENV=${VENV%/}
CACHE=$(abspath "${CLIPDENSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clipdense}")
cd "$ROOT"
TORCH_SPEC=${TORCH_SPEC:-$(grep -vE '^\s*(#|$)' requirements/torch.txt | xargs)}
TORCH_INDEX_URL=${TORCH_INDEX_URL:-}
JOBS=${MAX_JOBS:-$(nproc 2>/dev/null || echo 2)}
MMCV_VERSION=2.1.0
VPY="$VENV/bin/python"
LOGS="$VENV/.clipdense-logs"

# ------------------------------------------------------------ step functions
# Each expensive step is one function, so that tests can replace it
# (CLIPDENSE_SETUP_HOOKS) and check the logic around it cheaply.

# pip_in PYTHON LOG ARGS...: run pip of that interpreter, output to LOG.
# On failure the log's tail is shown. Resolver conflicts that pip reports
# without failing are shown too: they are real problems of the environment.
pip_in() {
    local py=$1 log=$2
    shift 2
    if ! "$py" -m pip --disable-pip-version-check "$@" >>"$log" 2>&1; then
        tail -n 25 "$log" >&2
        return 1
    fi
    if grep -q "pip's dependency resolver" "$log"; then
        grep -A8 "pip's dependency resolver" "$log" >&2
        die "pip reported conflicting requirements (log: $log)."
    fi
}

make_venv() { # make_venv DIR
    "$PYTHON" -m venv "$1"
}

# Prints: torch version, cuda tag, python version, 1 when C++20 is needed.
torch_info() {
    "$VPY" - <<'EOF'
import sys, torch
v = torch.__version__.split('+')[0]
cu = torch.version.cuda if torch.cuda.is_available() and torch.version.cuda else 'cpu'
major, minor = (int(p) for p in v.split('.')[:2])
print(v, 'cu' + cu.replace('.', '') if cu != 'cpu' else 'cpu',
      '%d.%d' % sys.version_info[:2], int((major, minor) >= (2, 10)))
EOF
}

mmcv_importable() {
    "$VPY" -c 'import mmcv.ops' 2>/dev/null
}

# A throw-away venv for compiling mmcv: the build tools (setuptools<70, wheel,
# ninja) in its own site-packages, torch and numpy seen from the user's venv
# through a path file added after the tools are installed (so pip never checks
# torch's setuptools requirement against the old setuptools).
make_build_env() { # make_build_env DIR LOG
    local benv=$1 log=$2 site
    make_venv "$benv" >>"$log" 2>&1 || return 1
    pip_in "$benv/bin/python" "$log" install -r "$ROOT/requirements/build.txt" || return 1
    site=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    "$benv/bin/python" -c 'import sys, sysconfig, os
p = os.path.join(sysconfig.get_paths()["purelib"], "clipdense-runtime.pth")
open(p, "w").write(sys.argv[1] + "\n")' "$site"
    "$benv/bin/python" -c 'import torch, setuptools, pkg_resources' >>"$log" 2>&1
}

# pip prepares the sdist's metadata (runs its setup.py) while downloading, so
# this runs in the build venv too: setup.py imports pkg_resources and torch.
download_mmcv_sdist() { # download_mmcv_sdist DIR LOG BUILDPY
    "$3" -m pip --disable-pip-version-check download -q --no-deps --no-binary :all: \
        --no-build-isolation "mmcv==$MMCV_VERSION" -d "$1" >>"$2" 2>&1
}

# build_mmcv_wheel SRC OUTDIR LOG BUILDPY: compile the patched sdist.
build_mmcv_wheel() {
    local src=$1 out=$2 log=$3 bpy=$4
    (cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS="$JOBS" "$bpy" -m pip --disable-pip-version-check \
        wheel --no-build-isolation --no-deps -w "$out" . >>"$log" 2>&1)
}

check_imports() {
    "$VPY" -c 'import clipdense, mmcv.ops, mmseg.models, mmdet.models'
}

versions() {
    "$VPY" -c 'import torch, mmcv, mmseg, mmdet; print("torch", torch.__version__, "mmcv", mmcv.__version__, "mmseg", mmseg.__version__, "mmdet", mmdet.__version__)'
}

# A wheel in the cache counts only when it is a complete zip: a copy killed
# half-way is never published (see publish_wheel), but disks fill up.
valid_wheel() {
    "$PYTHON" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).testzip() is None or sys.exit(1)' "$1" 2>/dev/null
}

if [ -n "${CLIPDENSE_SETUP_HOOKS:-}" ]; then
    # shellcheck disable=SC1090
    . "$CLIPDENSE_SETUP_HOOKS"
fi

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
if [ -x "$VPY" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "environment $VENV is up to date"
    exit 0
fi

# -------------------------------------------------------------------- venv
pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ -x "$VPY" ]; then
    vver=$("$VPY" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)
    if [ "$vver" != "$pyver" ]; then
        say "existing $VENV uses Python $vver, want $pyver: recreating it"
        rm -rf "$VENV"
    else
        say "set-up of $VENV is outdated or was interrupted: refreshing it"
    fi
elif [ -e "$VENV" ] && [ -n "$(ls -A "$VENV" 2>/dev/null)" ]; then
    die "$VENV exists but is not a virtual environment (no bin/python). Move it away or pick another VENV=..."
fi
if [ ! -x "$VPY" ]; then
    say "creating $VENV with $("$PYTHON" -V 2>&1)"
    mkdir -p "$(dirname "$VENV")"
    make_venv "$VENV" || die "could not create a virtual environment at $VENV with $PYTHON."
fi
rm -f "$stamp"
mkdir -p "$LOGS"

# ------------------------------------------------------------------- torch
say "installing $TORCH_SPEC${TORCH_INDEX_URL:+ from $TORCH_INDEX_URL} (first time: about a minute; log: $LOGS/torch.log)"
: >"$LOGS/torch.log"
# shellcheck disable=SC2086
pip_in "$VPY" "$LOGS/torch.log" install $TORCH_SPEC ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} ||
    die "could not install '$TORCH_SPEC' (log: $LOGS/torch.log). Pick another build with TORCH_SPEC=... (and TORCH_INDEX_URL=... for CUDA wheels)."

# -------------------------------------------------------------------- mmcv
tinfo=$(torch_info) || die "torch was installed but does not import (log: $LOGS/torch.log)."
read -r torch_v cuda_tag py_v need_cxx20 <<<"$tinfo"
key="mmcv${MMCV_VERSION}-torch${torch_v}-${cuda_tag}-py${py_v}"
whl_dir="$CACHE/wheels/$key"
installed_key=$(cat "$VENV/.mmcv-key" 2>/dev/null || true)
whl=""
if [ "$installed_key" = "$key" ] && mmcv_importable; then
    say "mmcv $MMCV_VERSION already installed for $key"
else
    # Leftovers of interrupted builds: a `.partial.PID` entry whose process is
    # gone is removed; one whose process still runs belongs to another set-up.
    for part in "$whl_dir".partial.*; do
        [ -e "$part" ] || continue
        pid=${part##*.partial.}
        if ! kill -0 "$pid" 2>/dev/null; then
            say "removing $part (left by an interrupted build)"
            rm -rf "$part"
        fi
    done
    for cand in "$whl_dir"/mmcv-*.whl; do
        [ -e "$cand" ] || continue
        if valid_wheel "$cand"; then
            whl=$cand
            break
        fi
        say "cached wheel $cand is damaged: removing it and building again"
        rm -f "$cand"
    done
    if [ -z "$whl" ]; then
        command -v g++ >/dev/null 2>&1 || command -v c++ >/dev/null 2>&1 ||
            die "no C++ compiler found; mmcv $MMCV_VERSION must be compiled. Install one (Debian/Ubuntu: apt-get install g++; Fedora: dnf install gcc-c++) and re-run."
        "$VPY" -c 'import os, sysconfig; p = sysconfig.get_paths()["include"]; raise SystemExit(0 if os.path.exists(os.path.join(p, "Python.h")) else 1)' ||
            die "Python headers (Python.h) are missing; mmcv must be compiled against them. Install them (Debian/Ubuntu: apt-get install python3-dev) and re-run."
        build=$(mktemp -d "${TMPDIR:-/tmp}/clipdense-mmcv.XXXXXX")
        log="$build/build.log"
        say "building mmcv $MMCV_VERSION for $key with $JOBS jobs (once per machine, about 8 minutes on 2 cores); log: $log"
        make_build_env "$build/buildenv" "$log" ||
            { tail -n 20 "$log" >&2; die "could not prepare the mmcv build environment (full log: $log)."; }
        download_mmcv_sdist "$build" "$log" "$build/buildenv/bin/python" ||
            { tail -n 20 "$log" >&2; die "could not download the mmcv $MMCV_VERSION sdist from PyPI (full log: $log)."; }
        tar -xzf "$build"/mmcv-"$MMCV_VERSION".tar.gz -C "$build"
        src="$build/mmcv-$MMCV_VERSION"
        if [ "$need_cxx20" = 1 ]; then
            grep -q -- '-std=c++17' "$src/setup.py" ||
                die "mmcv setup.py no longer contains -std=c++17; the C++20 patch in tools/setup_env.sh needs updating."
            sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
        fi
        build_mmcv_wheel "$src" "$build/dist" "$log" "$build/buildenv/bin/python" || {
            grep -E 'error|Error' "$log" | tail -n 15 >&2 || true
            die "building mmcv $MMCV_VERSION failed (full log: $log). Check the compiler (g++ >= 10 for C++20), the Python headers and free disk space."
        }
        built=$(ls "$build"/dist/mmcv-*.whl 2>/dev/null | head -n1 || true)
        [ -n "$built" ] && valid_wheel "$built" ||
            die "the mmcv build finished without a valid wheel in $build/dist (full log: $log)."
        # Publish the cache entry atomically: a killed build never leaves a
        # half-written wheel where the next run would trust it.
        mkdir -p "$CACHE/wheels"
        part="$whl_dir.partial.$$"
        rm -rf "$part" && mkdir -p "$part" && cp "$built" "$part"/
        rm -rf "$whl_dir" && mv "$part" "$whl_dir"
        rm -rf "$build"
        whl=$(ls "$whl_dir"/mmcv-*.whl | head -n1)
        say "cached $whl"
    else
        say "using cached mmcv wheel $whl"
    fi
    # Another build of mmcv (other torch) or a broken one may be installed;
    # pip would keep it, as its version is the same.
    "$VPY" -m pip --disable-pip-version-check uninstall -y -q mmcv >/dev/null 2>&1 || true
fi

# ---------------------------------------------------------- the rest + us
# One resolve for mmcv (the wheel stands in for `mmcv==2.1.0`), OpenMMLab,
# open_clip, the runtime and test requirements, so that pip checks them all
# together and never sees a half-installed set.
say "installing mmcv, OpenMMLab, open_clip and clipdense (editable; log: $LOGS/install.log)"
: >"$LOGS/install.log"
pip_in "$VPY" "$LOGS/install.log" install ${whl:+"$whl"} -r requirements/mminstall.txt \
    -r requirements/runtime.txt -r requirements/tests.txt ||
    die "installing the requirements failed (log: $LOGS/install.log)."
echo "$key" >"$VENV/.mmcv-key"
pip_in "$VPY" "$LOGS/install.log" install --no-build-isolation --no-deps -e . ||
    die "installing clipdense itself failed (log: $LOGS/install.log)."
check_imports ||
    die "the environment was installed but 'import clipdense' failed (see above)."
echo "$want" >"$stamp"
say "done: $VENV ($(versions))"
