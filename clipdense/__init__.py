"""clipdense: CLIP-based dense prediction on OpenMMLab.

Importing the package checks that the installed OpenMMLab versions are inside
the window clipdense is tested with, and says what to install when they are
not (version mismatches are the most common failure of the older CLIP
segmentation repositories).
"""
from importlib import metadata as _metadata

from .version import __version__

# package -> (lowest allowed, first disallowed, what to install)
MM_VERSION_WINDOW = {
    'mmcv': ('2.0.0rc4', '2.2.0', 'mmcv==2.1.0 (built from source: run `make test` '
             'or `bash tools/setup_env.sh`, which builds and caches it)'),
    'mmengine': ('0.10.0', '1.0.0', 'mmengine==0.10.7'),
    'mmsegmentation': ('1.2.0', '1.3.0', 'mmsegmentation==1.2.2'),
    'mmdet': ('3.0.0', '3.4.0', 'mmdet==3.3.0'),
}


def _parse(version):
    from packaging.version import Version
    return Version(version)


def check_mm_versions(window=None, get_version=None):
    """Raise ImportError naming the fix if an OpenMMLab package is missing or
    outside the supported window.

    Args:
        window (dict, optional): package -> (min, max_exclusive, hint).
            Defaults to :data:`MM_VERSION_WINDOW`.
        get_version (callable, optional): package name -> version string;
            defaults to :func:`importlib.metadata.version`. Injected by tests.
    """
    window = MM_VERSION_WINDOW if window is None else window
    get_version = get_version or _metadata.version
    problems = []
    for pkg, (low, high, hint) in window.items():
        try:
            found = get_version(pkg)
        except _metadata.PackageNotFoundError:
            problems.append(f'{pkg} is not installed; install {hint}')
            continue
        if not _parse(low) <= _parse(found) < _parse(high):
            problems.append(f'{pkg} {found} is installed but clipdense needs '
                            f'{low} <= {pkg} < {high}; install {hint}')
    if problems:
        raise ImportError('clipdense cannot run with these OpenMMLab '
                          'packages:\n  - ' + '\n  - '.join(problems))


check_mm_versions()

__all__ = ['__version__', 'check_mm_versions', 'MM_VERSION_WINDOW']
