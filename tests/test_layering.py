"""Who may import whom, read from the source (an AST scan of every import statement, including
the ones inside functions): foley_core is the product library and imports neither the UI
(gradio, app) nor the research package (foley_lab); foley_lab builds on foley_core.
Also: `launch.py train|eval` points to the research package's own entry point, and no comment or
docstring cites an issue number."""

import ast
import io
import re
import sys
import tokenize
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# package -> top-level modules it must never import
FORBIDDEN = {
    "foley_core": {"gradio", "app", "foley_lab"},
    "foley_lab": {"gradio", "app"},
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file; relative imports are resolved
    against the file's package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = path.relative_to(REPO).with_suffix("").parts[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return sorted(found)


def violations(package: str) -> list[str]:
    bad = []
    for path in sorted((REPO / package).rglob("*.py")):
        for line, name in imported_modules(path):
            if name.split(".")[0] in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    return bad


# the model layer under the backends: the backends drive the pipeline, never the reverse
LOWER = {"foley_core/pipeline.py": ("foley_core.backends", "foley_core.generate"),
         "foley_core/model": ("foley_core.backends", "foley_core.generate", "foley_core.pipeline")}


@pytest.mark.parametrize("where", sorted(LOWER))
def test_pipeline_and_model_never_import_the_layers_above(where):
    root = REPO / where
    paths = sorted(root.rglob("*.py")) if root.is_dir() else [root]
    assert paths
    bad = [f"{p.relative_to(REPO)}:{line} imports {name}" for p in paths for line, name in imported_modules(p)
           if any(name == up or name.startswith(up + ".") for up in LOWER[where])]
    assert bad == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_never_imports_a_higher_layer(package):
    assert (REPO / package / "__init__.py").is_file()
    assert violations(package) == []


def test_the_scan_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    # not vacuous: a lazy import inside a function and a relative one are both found
    fake = tmp_path / "foley_core" / "sub"
    fake.mkdir(parents=True)
    (tmp_path / "foley_core" / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "m.py").write_text("def f():\n    import foley_lab.training\n\nfrom ..x import y\n"
                               "from gradio import Blocks\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert violations("foley_core") == ["foley_core/sub/m.py:2 imports foley_lab.training",
                                        "foley_core/sub/m.py:5 imports gradio"]
    assert imported_modules(fake / "m.py")[1] == (4, "foley_core.x")


@pytest.mark.parametrize("command", ["train", "eval"])
def test_launch_points_research_commands_to_the_lab(command, capsys):
    import launch

    assert launch.main([command, "--out", "x", "--steps", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: '{command}' moved to the research package; run: python -m foley_lab {command} ..."]


def test_lab_entry_point_has_the_research_commands():
    from foley_lab.cli import build_parser

    choices = build_parser()._subparsers._group_actions[0].choices
    assert set(choices) == {"train", "eval"}
    assert choices["train"].get_default("_module") == "foley_lab.cli.train"
    assert choices["eval"].get_default("_module") == "foley_lab.cli.evaluate"


# --- comments and docstrings say why, never which issue asked for it --------------------------

ISSUE_REF = re.compile(r"\bissues? \d+|#1[0-9]\b")


def issue_references(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    found = [(tok.start[0], tok.string) for tok in tokenize.generate_tokens(io.StringIO(text).readline)
             if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                found.append((node.body[0].lineno, doc))
    return [f"{path.relative_to(REPO)}:{line}" for line, s in sorted(found) if ISSUE_REF.search(s)]


@pytest.mark.parametrize("package", ["foley_core", "foley_lab", "app"])
def test_no_comment_or_docstring_cites_an_issue_number(package):
    assert [hit for p in sorted((REPO / package).rglob("*.py")) for hit in issue_references(p)] == []


def test_the_issue_scan_sees_comments_and_docstrings(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    f = tmp_path / "m.py"
    f.write_text('"""Module (issue 4)."""\n\nx = "Goals (issue 4):"   # fine: a string\n\n\n'
                 'def g():\n    """Fine."""\n    return 1  # see #12\n\n\nclass C:\n    """Per issues 7."""\n')
    assert issue_references(f) == ["m.py:1", "m.py:8", "m.py:12"]


# --- the product path is made of named steps: no function longer than a screen ------------------

MAX_FUNCTION_LINES = 80


def function_lengths(path: Path) -> list[tuple[int, str, int]]:
    """(line, name, code lines) of every function and method in the file: its lines from the
    first decorator (or `def`) to its end, without its docstring. Blank and comment lines
    inside count: they are part of what a reader scrolls through."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            n = node.end_lineno - first + 1
            if ast.get_docstring(node, clean=False) is not None:
                n -= node.body[0].end_lineno - node.body[0].lineno + 1
            found.append((node.lineno, node.name, n))
    return found


def long_functions(packages: tuple[str, ...]) -> list[str]:
    return [f"{p.relative_to(REPO)}:{line} {name} has {n} lines"
            for package in packages for p in sorted((REPO / package).rglob("*.py"))
            for line, name, n in function_lengths(p) if n > MAX_FUNCTION_LINES]


def test_no_function_in_the_product_path_is_over_80_lines():
    assert long_functions(("foley_core", "app")) == []


def test_the_length_scan_counts_code_lines_without_the_docstring(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    (tmp_path / "pkg").mkdir()
    doc = '    """A docstring\n' + "    of many lines\n" * 30 + '    """\n'
    short = "def short():\n" + doc + "".join(f"    x{i} = {i}\n" for i in range(79))
    long = "class C:\n    @staticmethod\n    def long():\n" + "".join(f"        x{i} = {i}\n" for i in range(80))
    (tmp_path / "pkg" / "m.py").write_text(short + "\n\n" + long)
    lengths = {name: n for _, name, n in function_lengths(tmp_path / "pkg" / "m.py")}
    assert lengths["short"] == 80                 # the def line and 79 lines of code; not the docstring
    assert lengths["long"] == 82                  # decorator, def and 80 lines of code
    assert long_functions(("pkg",)) == [f"pkg/m.py:{short.count(chr(10)) + 5} long has 82 lines"]
