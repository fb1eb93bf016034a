"""What the benchmark scripts of ``tools/analysis_tools/`` share.

Each ``bench_*.py`` is an experiment spec (which configs, which settings,
which table); this module holds the plumbing they used to copy:

* :func:`make_log` - the ``[script] message`` progress lines;
* :func:`repo_root` - the checkout a script lives in;
* :func:`cache_key` - a short hash of files (by content) and values, for
  "skip this step if its inputs did not change" stamps;
* :func:`build_runner` - runners built through the tools' own launcher
  (:func:`clipdense.engine.launch.build_runner`, as tools/train.py and
  tools/test.py build theirs), so a benchmark runs the shipped path;
* :func:`loss_curve` - a finished run's training loss in a few numbers;
* :func:`command_line`, :func:`md_table`, :func:`write_results` - result
  files: a markdown page with the command that wrote it on top, and a JSON
  twin (the scripts keep their own page layout).
"""
import hashlib
import json
import os
import os.path as osp
import sys
from typing import Callable, List, Optional, Sequence

from .launch import build_runner  # noqa: F401 (re-exported for the scripts)


def make_log(name: str, stderr: bool = False) -> Callable[[str], None]:
    """A ``log(msg)`` printing ``[name] msg`` (flushed) to stdout or stderr."""
    stream = sys.stderr if stderr else None

    def log(msg):
        print(f'[{name}] {msg}', file=stream or sys.stdout, flush=True)

    return log


def repo_root(script_file: str) -> str:
    """The checkout of a script in ``tools/analysis_tools/``."""
    return osp.dirname(osp.dirname(osp.dirname(osp.abspath(script_file))))


def cache_key(*parts, encode: str = 'json') -> str:
    """16 hex digits of SHA-256 over ``parts``: an existing file path counts
    by its bytes, anything else by ``json.dumps(p, sort_keys=True,
    default=str)`` (``encode='json'``) or ``str(p)`` (``encode='str'``)."""
    if encode not in ('json', 'str'):
        raise ValueError(f"encode must be 'json' or 'str', got {encode!r}")
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, str) and osp.isfile(p):
            with open(p, 'rb') as f:
                h.update(f.read())
        elif encode == 'json':
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
        else:
            h.update(str(p).encode())
    return h.hexdigest()[:16]


def loss_curve(runner, points: int = 10) -> List[float]:
    """The total training loss (``train/loss``) of a finished runner,
    averaged over ``points`` equal stretches of its logged iterations, first
    to last (fewer points when fewer iterations ran; ``[]`` when none)."""
    try:
        hist = runner.message_hub.get_scalar('train/loss').data[0]
    except KeyError:
        return []
    hist = [float(v) for v in hist]
    n = len(hist)
    points = min(points, n)
    return [round(sum(hist[i * n // points:(i + 1) * n // points]) /
                  max((i + 1) * n // points - i * n // points, 1), 4)
            for i in range(points)]


def command_line(script: str, argv: Optional[Sequence[str]] = None,
                 threads_env: Sequence[str] = ()) -> str:
    """``python tools/analysis_tools/<script> <argv>`` (``sys.argv[1:]`` by
    default), prefixed with ``VAR=value`` for each name in ``threads_env``
    (``(unset)`` when not set)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    env = ''.join(f'{v}={os.environ.get(v, "(unset)")} ' for v in threads_env)
    return f'{env}python tools/analysis_tools/{script} ' + ' '.join(argv)


def md_table(header: Sequence[str], rows: Sequence[Sequence]) -> List[str]:
    """A markdown table as lines (cells through ``str``)."""
    lines = ['| ' + ' | '.join(map(str, header)) + ' |',
             '| ' + ' | '.join(['---'] * len(header)) + ' |']
    lines += ['| ' + ' | '.join(map(str, r)) + ' |' for r in rows]
    return lines


def write_results(md_path: str, md: str, json_path: Optional[str] = None,
                  data=None, atomic: bool = True, **json_kw) -> None:
    """Write the markdown text ``md`` to ``md_path`` and, with ``json_path``,
    ``json.dumps(data, **json_kw)`` to ``json_path`` (parent folders made;
    written atomically unless ``atomic=False``)."""
    from .checkpoint import atomic_write_bytes
    for path, text in ((md_path, md), (json_path, None if json_path is None
                                       else json.dumps(data, **json_kw))):
        if path is None:
            continue
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        if atomic:
            atomic_write_bytes(path, text.encode())
        else:
            with open(path, 'w') as f:
                f.write(text)
