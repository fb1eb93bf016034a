"""The package's imports point down only, and never go round in a circle.

Reads every module of ``clipdense`` with :mod:`ast` (nothing is imported or
run), counts every ``import`` statement, at module level or inside a
function, and checks them against :data:`LAYERS` (the order written in
``docs/adding_a_method.md``, section "Layers"):

* an import from a module to a module of a higher layer fails;
* a circle of modules importing each other fails, whatever the layers.

Importing ``a.b.c`` from outside ``a.b`` also runs ``a/b/__init__.py``, so
such an import counts as an import of the package ``a.b`` too.
"""
import ast
import os
import os.path as osp
import textwrap
from typing import Dict, List, Sequence, Set, Tuple

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: Bottom to top. A module belongs to the layer of its longest listed prefix;
#: it may import its own layer and the layers below it.
LAYERS: Sequence[Sequence[str]] = (
    # 0: the package root, its registries, files (safe loading, atomic
    #    writing, image reading)
    ('clipdense', 'clipdense.version', 'clipdense.registry', 'clipdense.fileio'),
    # 1: data, config checks, test helpers without models
    ('clipdense.datasets', 'clipdense.utils.cfg_options', 'clipdense.utils.metafiles',
     'clipdense.testing'),
    # 2: models (backbones, heads, segmentors, the vocabulary owner)
    ('clipdense.models',),
    # 3: runner parts that drive models (hooks, loops, checkpoints),
    #    metrics, visualizers
    ('clipdense.engine', 'clipdense.evaluation'),
    ('clipdense.visualization',),
    # 5: register_all_modules: imports every layer that registers modules
    ('clipdense.utils',),
    # 6: user API
    ('clipdense.apis',),
    # 7: entry points of tools/ and demo/ living in the package
    ('clipdense.engine.launch', 'clipdense.engine.bench_harness'),
)


def module_files(root: str, package: str) -> Dict[str, str]:
    """``{dotted module name: file}`` for every ``.py`` under ``root/package``."""
    found = {}
    base = osp.join(root, package)
    for folder, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if not d.startswith(('.', '__')))
        rel = osp.relpath(folder, root).split(os.sep)
        for name in sorted(files):
            if not name.endswith('.py'):
                continue
            parts = rel if name == '__init__.py' else rel + [name[:-3]]
            found['.'.join(parts)] = osp.join(folder, name)
    return found


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ''
    parts = module.split('.')
    if not is_package:
        parts = parts[:-1]
    parts = parts[:len(parts) - (node.level - 1)]
    return '.'.join(parts + ([node.module] if node.module else []))


def import_edges(root: str, package: str) -> Dict[str, Set[str]]:
    """``{module: modules it imports}`` within ``package``, package
    ``__init__`` modules run on the way included (see the module docstring)."""
    modules = module_files(root, package)
    edges: Dict[str, Set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
        is_pkg = path.endswith('__init__.py')
        targets = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(mod, is_pkg, node)
                for a in node.names:
                    sub = f'{base}.{a.name}'
                    targets.append(sub if sub in modules else base)
        for target in targets:
            if target != package and not target.startswith(package + '.'):
                continue
            while target and target not in modules:  # attribute of a module
                target = target.rpartition('.')[0]
            parts = target.split('.')
            # a.b.c from outside a.b runs a/b/__init__.py first
            for i in range(1, len(parts) + 1):
                step = '.'.join(parts[:i])
                inside = mod == step or mod.startswith(step + '.')
                if step in modules and step != mod and (i == len(parts) or not inside):
                    edges[mod].add(step)
    return edges


def layer_of(module: str, layers: Sequence[Sequence[str]]) -> int:
    best, level = -1, None
    for i, prefixes in enumerate(layers):
        for p in prefixes:
            if (module == p or module.startswith(p + '.')) and len(p) > best:
                best, level = len(p), i
    if level is None:
        raise AssertionError(f'{module} is in no layer; add it to LAYERS in '
                             f'{__file__} and to the docs')
    return level


def upward_imports(edges, layers) -> List[Tuple[str, str]]:
    return sorted((a, b) for a, targets in edges.items() for b in targets
                  if layer_of(b, layers) > layer_of(a, layers))


def import_circles(edges) -> List[List[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    circles = import_circles(import_edges(ROOT, 'clipdense'))
    assert not circles, 'import circles (break them by moving code down a layer):\n' + \
        '\n'.join(' <-> '.join(c) for c in circles)


def test_imports_point_down():
    edges = import_edges(ROOT, 'clipdense')
    for mod in edges:  # every module has a layer
        layer_of(mod, LAYERS)
    bad = upward_imports(edges, LAYERS)
    assert not bad, 'imports from a lower layer to a higher one (see LAYERS and ' \
        'docs/adding_a_method.md "Layers"; move the code down or the import up):\n' + \
        '\n'.join(f'{a} (layer {layer_of(a, LAYERS)}) -> {b} (layer {layer_of(b, LAYERS)})'
                  for a, b in bad)


def _write(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_the_walker_finds_circles_and_upward_imports(tmp_path):
    """The checks can fail: a tiny package with one circle (through a
    function-level import) and one upward import through a package
    ``__init__``."""
    _write(tmp_path, {
        'pkg/__init__.py': '',
        'pkg/low/__init__.py': 'from .a import f\n',
        'pkg/low/a.py': 'def f():\n    from pkg.low import b\n',
        'pkg/low/b.py': 'from . import a\nimport os\n',
        'pkg/low/c.py': 'from pkg.high.d import g  # upward\n',
        'pkg/high/__init__.py': '',
        'pkg/high/d.py': 'from ..low.a import f\n\ndef g():\n    pass\n',
        'pkg/high/e.py': 'from pkg.low import a\n',
    })
    edges = import_edges(str(tmp_path), 'pkg')
    assert edges['pkg.low.a'] == {'pkg.low.b'}
    assert edges['pkg.high.d'] == {'pkg.low', 'pkg.low.a'}
    assert edges['pkg.high.e'] == {'pkg.low', 'pkg.low.a'}
    assert edges['pkg.low.c'] == {'pkg.high', 'pkg.high.d'}
    assert import_circles(edges) == [['pkg.low.a', 'pkg.low.b']]
    layers = (('pkg', 'pkg.low'), ('pkg.high',))
    assert upward_imports(edges, layers) == [('pkg.low.c', 'pkg.high'),
                                             ('pkg.low.c', 'pkg.high.d')]
    # without the bad lines both checks pass
    (tmp_path / 'pkg/low/c.py').write_text('import pkg.low.b\n')
    (tmp_path / 'pkg/low/a.py').write_text('def f():\n    pass\n')
    edges = import_edges(str(tmp_path), 'pkg')
    assert import_circles(edges) == [] and upward_imports(edges, layers) == []
    with pytest.raises(AssertionError, match='pkg.high.d is in no layer'):
        layer_of('pkg.high.d', (('pkg.low',),))
