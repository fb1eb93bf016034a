"""tools/setup_env.sh: the logic around the expensive steps.

The real script runs with its expensive steps (creating a venv, pip, compiling
mmcv) replaced through ``CLIPDENSE_SETUP_HOOKS`` by stubs that record what
they were asked to do. What is checked is the script's own logic: paths
(relative or absolute ``VENV``, spaces, any working directory), the stamp,
the wheel cache (reuse, interrupted and damaged entries), failure messages.
The real build is walked by ``.ci/run`` on every CI run (cold cache).
"""
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'tools', 'setup_env.sh')
KEY = 'mmcv2.1.0-torch2.14.1-cpu-py3.11'

pytestmark = pytest.mark.skipif(
    shutil.which('bash') is None or shutil.which('sha256sum') is None,
    reason='the set-up script needs bash and coreutils')

# The stub venv's python: `-m pip` is recorded (and `pip wheel` is never
# reached, build_mmcv_wheel is stubbed); everything else runs the real
# interpreter, so the script's own `python -c` checks work.
STUB_PYTHON = """#!/usr/bin/env bash
if [ "$1" = -m ] && [ "$2" = pip ]; then
    echo "pip $*" >>"$SETUP_CALLS"
    exit 0
fi
exec {real} "$@"
"""

HOOKS = r"""
make_venv() {
    mkdir -p "$1/bin"
    sed "s#{real}#$SETUP_REAL_PY#" "$SETUP_STUB_PY" >"$1/bin/python"
    chmod +x "$1/bin/python"
    echo "venv $1" >>"$SETUP_CALLS"
}
torch_info() { echo "2.14.1 cpu 3.11 1"; }
mmcv_importable() { [ -f "$VENV/mmcv-installed" ]; }
make_build_env() {
    make_venv "$1" >/dev/null
    echo "buildenv $1" >>"$SETUP_CALLS"
}
download_mmcv_sdist() {
    mkdir -p "$1/pkg/mmcv-2.1.0"
    echo "extra_compile_args = ['-std=c++17']" >"$1/pkg/mmcv-2.1.0/setup.py"
    tar -czf "$1/mmcv-2.1.0.tar.gz" -C "$1/pkg" mmcv-2.1.0
}
build_mmcv_wheel() {
    local src=$1 out=$2 log=$3 bpy=$4
    # The original defect: the build runs inside the sdist, where a relative
    # interpreter path no longer exists. Every path handed over is absolute.
    for p in "$src" "$out" "$log" "$bpy" "$VPY"; do
        case "$p" in /*) ;; *) echo "relative path $p" >&2; return 1 ;; esac
    done
    (cd "$src" && "$VPY" -c 'pass' && "$bpy" -c 'pass') || return 1
    grep -q -- '-std=c++20' "$src/setup.py" || { echo "not patched" >&2; return 1; }
    [ -z "${SETUP_FAIL_BUILD:-}" ] || { echo "error: stub build failure" >>"$log"; return 1; }
    mkdir -p "$out"
    "$SETUP_REAL_PY" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1], "w").writestr("mmcv/__init__.py", "")' \
        "$out/mmcv-2.1.0-cp311-cp311-linux_x86_64.whl"
    echo "build $src" >>"$SETUP_CALLS"
}
check_imports() { touch "$VENV/mmcv-installed"; }
versions() { echo "stub versions"; }
"""


@pytest.fixture
def env(tmp_path):
    stub_py = tmp_path / 'stub_python.sh'
    stub_py.write_text(STUB_PYTHON)
    hooks = tmp_path / 'hooks.sh'
    hooks.write_text(HOOKS)
    home = tmp_path / 'home'
    home.mkdir()
    e = {k: v for k, v in os.environ.items()
         if k not in ('VENV', 'CLIPDENSE_CACHE', 'XDG_CACHE_HOME', 'MAKEFLAGS',
                      'MFLAGS', 'MAKELEVEL', 'PYTHON')}
    e.update(HOME=str(home), CLIPDENSE_SETUP_HOOKS=str(hooks),
             SETUP_STUB_PY=str(stub_py), SETUP_REAL_PY=sys.executable,
             SETUP_CALLS=str(tmp_path / 'calls.log'),
             TMPDIR=str(tmp_path))
    return e


def run(env, cwd, **extra):
    e = dict(env, **extra)
    p = subprocess.run(['bash', SCRIPT], cwd=cwd, env=e, capture_output=True,
                       text=True, timeout=120)
    return p


def calls(env):
    path = env['SETUP_CALLS']
    if not osp.exists(path):
        return []
    with open(path) as f:
        lines = f.read().splitlines()
    os.remove(path)
    return lines


def cached_wheels(cache):
    d = osp.join(cache, 'wheels', KEY)
    return sorted(os.listdir(d)) if osp.isdir(d) else []


def test_relative_venv_from_another_directory(env, tmp_path):
    cwd = tmp_path / 'elsewhere'
    cwd.mkdir()
    p = run(env, cwd, VENV='rel/venv', CLIPDENSE_CACHE='cache')
    assert p.returncode == 0, p.stdout + p.stderr
    venv = cwd / 'rel' / 'venv'
    # Relative paths are taken from where the script was started.
    assert (venv / '.clipdense-setup').is_file()
    assert cached_wheels(str(cwd / 'cache')) == [
        'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl']
    c = calls(env)
    assert sum(line.startswith('build ') for line in c) == 1
    assert 'ERROR' not in p.stdout + p.stderr
    # The wheel is installed in the same pip call as the requirements.
    installs = [line for line in c if ' install ' in line and '.whl' in line]
    assert len(installs) == 1 and 'requirements/mminstall.txt' in installs[0]
    # The build tools (old setuptools) never go to the user's venv: the build
    # venv is separate (its real set-up is walked by .ci/run's cold build).
    assert not any('build.txt' in line or 'setuptools<70' in line for line in c)
    assert any(line.startswith('buildenv ') and str(venv) not in line
               for line in c)


def test_relative_venv_through_make(env, tmp_path):
    if shutil.which('make') is None:
        pytest.skip('make is not installed')
    venv = tmp_path / 'made venv'
    rel = osp.relpath(str(venv), ROOT)
    p = subprocess.run(['make', '-C', ROOT, 'setup', 'VENV=' + rel,
                        'CLIPDENSE_CACHE=' + str(tmp_path / 'cache')],
                       cwd=str(tmp_path), env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (venv / '.clipdense-setup').is_file()
    assert 'ERROR' not in p.stdout + p.stderr


def test_absolute_venv_with_space_then_up_to_date_then_stale(env, tmp_path):
    venv = tmp_path / 'a dir with spaces' / 'venv'
    cache = tmp_path / 'cache dir'
    kw = dict(VENV=str(venv), CLIPDENSE_CACHE=str(cache))
    p = run(env, ROOT, **kw)
    assert p.returncode == 0, p.stdout + p.stderr
    assert sum(c.startswith('build ') for c in calls(env)) == 1

    # Up to date: returns at once, no pip, no build.
    p = run(env, ROOT, **kw)
    assert p.returncode == 0 and 'is up to date' in p.stdout
    assert calls(env) == []

    # A stale stamp (requirements changed, or an interrupted set-up):
    # refreshed with the cached wheel, nothing compiled.
    (venv / '.clipdense-setup').write_text('stale\n')
    (venv / 'mmcv-installed').unlink()
    p = run(env, ROOT, **kw)
    assert p.returncode == 0, p.stdout + p.stderr
    assert 'outdated or was interrupted' in p.stdout
    assert 'using cached mmcv wheel' in p.stdout
    c = calls(env)
    assert not any(line.startswith('build ') for line in c)
    assert any(' install ' in line and '.whl' in line for line in c)
    assert (venv / '.clipdense-setup').read_text().strip() != 'stale'


def test_interrupted_and_damaged_cache_entries(env, tmp_path):
    cache = tmp_path / 'cache'
    wheels = cache / 'wheels'
    wheels.mkdir(parents=True)
    # A build killed while publishing (its process is gone) ...
    dead = wheels / (KEY + '.partial.999999999')
    dead.mkdir()
    (dead / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl').write_bytes(b'PK\x03')
    # ... and a truncated wheel in the published entry.
    entry = wheels / KEY
    entry.mkdir()
    (entry / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl').write_bytes(b'PK\x03\x04trunc')
    p = run(env, ROOT, VENV=str(tmp_path / 'venv'), CLIPDENSE_CACHE=str(cache))
    assert p.returncode == 0, p.stdout + p.stderr
    assert not dead.exists()
    assert 'damaged' in p.stdout
    assert sum(c.startswith('build ') for c in calls(env)) == 1
    whl = entry / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'
    assert zipfile.ZipFile(str(whl)).testzip() is None


def test_partial_entry_of_a_running_setup_is_left_alone(env, tmp_path):
    cache = tmp_path / 'cache'
    live = cache / 'wheels' / (KEY + '.partial.%d' % os.getpid())
    live.mkdir(parents=True)
    p = run(env, ROOT, VENV=str(tmp_path / 'venv'), CLIPDENSE_CACHE=str(cache))
    assert p.returncode == 0, p.stdout + p.stderr
    assert live.exists()


def test_failed_build_says_where_the_log_is_and_publishes_nothing(env, tmp_path):
    cache = tmp_path / 'cache'
    p = run(env, ROOT, VENV=str(tmp_path / 'venv'), CLIPDENSE_CACHE=str(cache),
            SETUP_FAIL_BUILD='1')
    assert p.returncode != 0
    assert 'building mmcv 2.1.0 failed (full log: ' in p.stderr
    log = p.stderr.split('full log: ')[1].split(')')[0]
    assert osp.isfile(log) and 'stub build failure' in open(log).read()
    assert cached_wheels(str(cache)) == []
    assert not (tmp_path / 'venv' / '.clipdense-setup').exists()


def test_not_a_venv_is_refused(env, tmp_path):
    target = tmp_path / 'precious'
    target.mkdir()
    (target / 'notes.txt').write_text('keep me')
    p = run(env, ROOT, VENV=str(target), CLIPDENSE_CACHE=str(tmp_path / 'c'))
    assert p.returncode != 0
    assert 'is not a virtual environment' in p.stderr
    assert (target / 'notes.txt').read_text() == 'keep me'
