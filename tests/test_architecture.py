"""The package's shape: no import cycle, one source of truth for every setting (the config dataclasses), and type
hints on every public function of the modules that mypy checks strictly."""
import configparser
import fnmatch
import importlib.util
from dataclasses import asdict, fields
from pathlib import Path

import pytest

from hsi.cli import _config_from_args, _Parser, build_parser, settings_fields
from hsi.config import FitOptions, RunConfig, field_default

ROOT = Path(__file__).resolve().parent.parent


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _layout():
    return _script("layout")


def test_no_import_cycle_inside_hsi():
    layout = _layout()
    graph = layout.import_graph()
    assert "hsi.pipeline" in graph and "hsi.engine" in graph["hsi.pipeline"]      # the graph sees the imports
    assert layout.cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle(tmp_path):
    package = tmp_path / "hsi"
    package.mkdir()
    (package / "__init__.py").write_text("from . import a\n")
    (package / "a.py").write_text("def f():\n    from .b import g\n")
    (package / "b.py").write_text("from .a import f\n")
    layout = _layout()
    assert layout.cycles(layout.import_graph(package)) == [["hsi.a", "hsi.b"]]


@pytest.mark.parametrize("command", ["train", "compare"])
def test_every_setting_has_an_option_whose_default_is_the_dataclass_default(command):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    options = {action.dest: action for action in sub._actions}
    for f in settings_fields():
        if command == "compare" and not f.metadata["compare"]:
            assert f.name not in options
            continue
        assert f.name in options, f"{f.name} has no option in hsi {command}"
        action = options[f.name]
        expected = None if f.metadata["unset_on_cli"] else field_default(f)
        if f.name == "model_kwargs":
            expected = []
        assert action.default == expected, f.name
        assert (action.help or "").startswith(f.metadata["help"][:20]), f.name
    base = ["--dataset", "indian_pines"]
    config = _config_from_args(sub.parse_args(base))
    assert asdict(config) == asdict(RunConfig(dataset="indian_pines"))


def test_choices_come_from_the_fields():
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["train"]
    options = {action.dest: action for action in sub._actions}
    assert options["checkpoint_on"].choices == ["val", "train", "last"]
    assert options["scheduler"].choices == ["plateau", "cosine"]
    assert isinstance(sub, _Parser)
    assert {f.name for f in fields(FitOptions)} <= set(options)


def _strict_modules(names):
    """The modules of ``names`` that setup.cfg's ``[mypy-...]`` sections give ``disallow_untyped_defs = True``."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    patterns = [pattern.strip() for section in config.sections() if section.startswith("mypy-")
                and config[section].getboolean("disallow_untyped_defs", False)
                for pattern in section.removeprefix("mypy-").split(",")]
    for pattern in patterns:
        assert any(fnmatch.fnmatchcase(name, pattern) for name in names), f"setup.cfg names no module: {pattern}"
    return sorted(name for name in names if any(fnmatch.fnmatchcase(name, p) for p in patterns))


def test_the_strictly_typed_modules_hint_every_public_function():
    counts = _script("annotations").counts()
    strict = _strict_modules(counts)
    assert {"hsi.config", "hsi.models.hybridsn", "hsi.models.attention.cbam"} <= set(strict)
    assert {name: missing for name in strict if (missing := counts[name][1])} == {}


def test_the_hint_counter_finds_what_lacks_hints(tmp_path):
    package = tmp_path / "hsi"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text(
        "def typed(x: int, *rest: str, flag: bool = False) -> int: ...\n"
        "def no_return(x: int): ...\n"
        "def _private(x): ...\n"
        "class Model:\n"
        "    def __init__(self, n: int): ...\n"
        "    def forward(self, x) -> int: ...\n"
        "    @staticmethod\n"
        "    def make(n) -> 'Model': ...\n"
        "    @classmethod\n"
        "    def build(cls) -> 'Model': ...\n"
        "class _Hidden:\n"
        "    def run(self, x): ...\n")
    counts = _script("annotations").counts(package)
    assert counts["hsi.a"] == (6, ["no_return", "Model.forward", "Model.make"])
    assert counts["hsi"] == (0, [])
