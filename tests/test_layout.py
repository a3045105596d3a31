"""The layout a newcomer reads (#27): no module of vggcli/ or data_tools/ over 400
lines, no function over 60, and no import circle among them (every import counted,
those inside functions too: a circle there is one a reader still has to untangle)."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("vggcli", "data_tools")


def _modules():
    """{dotted name: path} of every module of the packages."""
    found = {}
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    dotted = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                    found[dotted[:-len(".__init__")] if dotted.endswith(".__init__")
                          else dotted] = path
    return found


MODULES = _modules()


def _imports(dotted, path):
    """The package modules ``dotted`` imports (a name imported from a package counts as
    the module of that name where there is one, else as the package)."""
    package = dotted if path.endswith("__init__.py") else dotted.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            targets = [base + "." + a.name if base + "." + a.name in MODULES else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != dotted:
                found.add(target)
    return found


def test_no_module_over_400_lines_and_no_function_over_60():
    long_modules, long_functions = [], []
    for dotted, path in sorted(MODULES.items()):
        text = open(path).read()
        if text.count("\n") > 400:
            long_modules.append("%s (%d)" % (dotted, text.count("\n")))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 60:
                    long_functions.append("%s.%s (%d)" % (dotted, node.name, length))
    assert not long_modules and not long_functions, (long_modules, long_functions)


def test_no_import_circle():
    graph = {dotted: _imports(dotted, path) for dotted, path in MODULES.items()}
    circles = []
    for start in graph:  # a path back to ``start``, by depth-first search
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for following in graph[node]:
                if following == start:
                    circles.append(" -> ".join(trail + [start]))
                    stack = []
                    break
                if following not in seen:
                    seen.add(following)
                    stack.append((following, trail + [following]))
    assert not circles, circles


@pytest.mark.parametrize("package", ["core", "nets", "training", "distributed", "testing",
                                     "localisation", "bench", "cli", "study"])
def test_each_step_is_a_folder_with_its_own_description(package):
    init = os.path.join(ROOT, "vggcli", package, "__init__.py")
    assert ast.get_docstring(ast.parse(open(init).read())), init
