"""The package's shape, as docs/design.rst draws it."""
import ast
import pathlib
import re
import unittest


PACKAGE = pathlib.Path(__file__).resolve().parents[1]

#: Each module may import only modules before it (docs/design.rst).
ORDER = ['interfaces', 'clock', 'events', '_field', 'data', 'guard',
         'storage', 'legacy', 'principals', 'expiry', 'cleanup', 'schedule',
         'container', 'ram',
         'database', 'http', 'rollback', 'session', 'zcml', 'bootstrap',
         'transfer', 'migration', 'cli']


def packageImports(path):
    """The package modules *path* imports (at any depth)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [node.module + '.' + alias.name
                                     for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split('.')
            if parts[0] == 'zope_sessionx' and len(parts) > 1:
                if parts[1] in ORDER:
                    found.add(parts[1])
    return found


class StructureTests(unittest.TestCase):

    def _modules(self):
        return sorted(path for path in PACKAGE.glob('*.py')
                      if path.name != '__init__.py')

    def test_every_module_is_placed(self):
        self.assertEqual([path.stem for path in self._modules()],
                         sorted(ORDER))

    def test_imports_run_one_way(self):
        for path in self._modules():
            allowed = set(ORDER[:ORDER.index(path.stem)])
            self.assertEqual(packageImports(path) - allowed, set(),
                             path.name)

    def test_no_module_but_interfaces_over_500_lines(self):
        for path in self._modules():
            if path.stem == 'interfaces':
                continue
            lines = len(path.read_text(encoding='utf-8').splitlines())
            self.assertLessEqual(lines, 500, path.name)

    def test_design_draws_the_graph(self):
        text = (PACKAGE.parent.parent / 'docs' / 'design.rst').read_text(
            encoding='utf-8')
        block = text.split('.. code-block:: text', 1)[1].split(
            '``test_structure.py``', 1)[0]
        drawn, current = {}, None
        for line in block.splitlines():
            match = re.match(r'^    (\w+)\s+<- (.*)$', line)
            if match:
                current = drawn[match.group(1)] = set()
                line = match.group(2)
            elif current is None or not line.strip():
                continue
            line = line.split('(', 1)[0]
            current.update(name.strip() for name in line.split(',')
                           if name.strip())
        drawn['interfaces'] = set()
        actual = {path.stem: packageImports(path) for path in self._modules()}
        self.assertEqual(drawn, actual)
