"""The package's layering: imports point one way (schema/typing/io -> ops
-> data, datasets, sampling, loss, metrics -> nn -> train -> cli) and no
module imports itself back through others."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / 'pyg_recsys'

# top-level package part -> layer; a module may import its own layer or
# lower ones only
LAYERS = {
    'schema': 0, 'typing': 0, 'io': 0,
    'ops': 1,
    'data': 2, 'datasets': 2, 'sampling': 2, 'loss': 2, 'metrics': 2,
    'nn': 3,
    'train': 4,
    'cli': 5, '__main__': 5,
    'serving': 6,  # the Python face of run loading, export and serving
    'testing': 6,  # helpers of the test suite, above everything
}


def _module(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix('')
    parts = list(rel.parts)
    if parts[-1] == '__init__':
        parts = parts[:-1]
    return '.'.join(parts)


def _imports(path: Path) -> set[str]:
    """Every ``pyg_recsys`` module ``path`` imports, anywhere in it
    (function-level imports included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith('pyg_recsys'):
            out.add(node.module)
            for alias in node.names:  # 'from pyg_recsys import typing'
                sub = f'{node.module}.{alias.name}'
                if _exists(sub):
                    out.add(sub)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names
                    if a.name.startswith('pyg_recsys')}
    return out


def _exists(module: str) -> bool:
    rel = Path(*module.split('.')[1:])
    return ((PKG / rel).with_suffix('.py').is_file()
            or (PKG / rel / '__init__.py').is_file())


def _graph() -> dict[str, set[str]]:
    """Module -> the modules importing it runs: those it names and their
    parent packages (whose ``__init__`` runs first), the root aside."""
    graph = {}
    for path in PKG.rglob('*.py'):
        module = _module(path)
        deps = set()
        for dep in _imports(path):
            parts = dep.split('.')
            deps |= {'.'.join(parts[:n]) for n in range(2, len(parts) + 1)}
        graph[module] = {d for d in deps if _exists(d) and d != module
                         and not module.startswith(d + '.')}
    return graph


def _layer(module: str) -> int:
    parts = module.split('.')
    return LAYERS[parts[1]] if len(parts) > 1 else 6


def test_imports_point_one_way():
    bad = []
    for module, deps in _graph().items():
        for dep in deps:
            if dep == 'pyg_recsys':
                continue
            if _layer(dep) > _layer(module):
                bad.append(f'{module} imports {dep}')
    assert not bad, bad


def test_no_import_cycle_between_modules():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, ()):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                raise AssertionError(f'import cycle: {" -> ".join(cycle)}')
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node)


def test_every_part_has_a_layer():
    tops = {_module(p).split('.')[1] for p in PKG.rglob('*.py')
            if _module(p) != 'pyg_recsys'}
    assert tops <= set(LAYERS), tops - set(LAYERS)
