"""The package as a newcomer meets it: the front page's snippet runs, and the layering holds
(no import cycles, the library never touches tests/ or README.md, training does not import evaluation)."""
import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_snippet_runs_from_another_directory(tmp_path):
    """Run the library snippet of README.md as written, outside the repo (argen comes from
    `pip install -e .` in requirements-dev.txt, or `pip install .`)."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## The library"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "pixel-gpt" in lines[0] and lines[1] == "28 pixels drawn" and lines[-3] == "784 pixels drawn"
    assert re.fullmatch(r"tensor\(\[\d\.\d+, \d\.\d+\]\) tensor\(\[\d, \d\]\)", lines[-2])
    assert re.fullmatch(r"\d+ bytes; True", lines[-1])


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path):
    """The modules of the repo that a file imports (module level and inside functions)."""
    name, found = module_name(path), set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def graph(*packages):
    files = [p for package in packages for p in (ROOT / package).rglob("*.py")]
    names = {module_name(p) for p in files}
    return {module_name(p): imports(p) & names - {module_name(p)} for p in files}


def test_no_import_cycles():
    edges = graph("argen", "train")

    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    cycles = [module for module in edges if module in reach(module)]
    assert not cycles, f"import cycles through {cycles}"


def test_layering():
    library = graph("argen")
    assert not any(target.startswith(("train", "tests", "app")) for targets in library.values() for target in targets)
    for path in (ROOT / "argen").rglob("*.py"):  # no path into tests/ or the front page in the library's code
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        strings = [n.value for n in ast.walk(tree)
                   if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]
        assert not [s for s in strings if "README" in s or "tests/" in s or "fixtures" in s], path
    training = graph("train")
    assert not {"argen.evaluate"} & (training["train.loop"] | training["train.objectives"])


def test_every_tracked_binary_travels_through_lfs():
    """A Hugging Face Space refuses a git push that carries binaries outside LFS / Xet: each tracked
    file holding a NUL byte (weights, pictures, arrays) must have the lfs filter in .gitattributes."""
    if not (ROOT / ".git").exists():
        import pytest

        pytest.skip("not a git checkout")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    binaries = [f.decode() for f in files if f and (ROOT / f.decode()).is_file()
                and b"\0" in (ROOT / f.decode()).read_bytes()[:8000]]
    assert len(binaries) > 50  # the weights, the sample grids, the fixtures
    attributes = subprocess.run(["git", "check-attr", "filter", "--", *binaries], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.splitlines()
    outside = [line.split(":")[0] for line in attributes if not line.endswith(": filter: lfs")]
    assert not outside, f"binaries outside LFS in .gitattributes: {outside}"


def test_one_version():
    import argen

    assert re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1) == argen.__version__
    assert f"## {argen.__version__} " in (ROOT / "CHANGELOG.md").read_text()
