"""The README's examples: the paths they use are the ones `make demo` writes, the flags they pass exist."""
import ast
import re
import shlex

import pytest

from conftest import REPO_ROOT
from test_dld_table import _tool as _load_tool

README = (REPO_ROOT / "README.md").read_text()
# Tools whose parser a README command line is checked against, and the function that builds it.
PARSERS = {
    "demo.py": "get_parser", "evaluate_submission.py": "build_parser", "dld_table.py": "build_parser",
    "eval_recognition.py": "build_parser", "benchmark.py": "build_parser", "train_net.py": "build_parser",
    "generate_synthetic_data.py": "build_parser", "run_dld_demo.py": "build_parser",
    "benchmark_memory.py": "get_parser",
}


def _blocks(language: str):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def _commands():
    """Each `python tools/X.py ...` of the README's bash blocks, continuation lines joined."""
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("python tools/"):
                yield shlex.split(line)


def _tool(name: str, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "tools"))  # benchmark.py and run_dld_demo.py import dld_table
    return _load_tool(name[: -len(".py")])


def test_every_flag_of_the_readme_exists(monkeypatch):
    commands = list(_commands())
    assert len(commands) >= 10
    checked = 0
    for argv in commands:
        name = argv[1][len("tools/"):]
        assert (REPO_ROOT / "tools" / name).is_file(), argv
        if name not in PARSERS:
            continue
        parser = getattr(_tool(name, monkeypatch), PARSERS[name])()
        options = {s for action in parser._actions for s in action.option_strings}
        flags = [a for a in argv[2:] if a.startswith("--")]
        assert set(flags) <= options, (argv, set(flags) - options)
        checked += 1
    assert checked >= 8


def test_the_demo_paths_of_the_readme_are_those_make_demo_writes(monkeypatch):
    demo = _tool("run_dld_demo.py", monkeypatch)
    paths = demo.demo_paths("quick", demo.build_parser().get_default("report_dir"))
    written = [paths.datasets, paths.warmup, paths.teacher, *paths.dld, paths.table, paths.report]
    # The README names every one of them ...
    for path in written:
        assert path in README, path
    # ... and every output/dld_demo_quick path it uses lies under one of them.
    used = set(re.findall(r"output/dld_demo_quick[\w./-]*", README))
    assert used
    for path in used:
        assert any(path == w or path.startswith(w + "/") for w in written), path


@pytest.mark.parametrize("block", _blocks("python"), ids=lambda b: b.splitlines()[0][:40])
def test_python_blocks_parse_and_their_imports_exist(block):
    tree = ast.parse(block)
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    exec(compile(ast.Module(body=imports, type_ignores=[]), "README.md", "exec"), {})
