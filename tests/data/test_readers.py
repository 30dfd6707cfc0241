"""The reader registry: built-in readers by suffix, readers registered in code and through entry points."""
import sys
import textwrap

import numpy as np
import pytest

import hsi
from hsi.data import readers
from hsi.errors import ConfigError, DataError


@pytest.fixture
def clean_registry(monkeypatch):
    """Readers registered inside a test are forgotten after it."""
    monkeypatch.setattr(readers.READERS, "registered", dict(readers.READERS.registered))
    monkeypatch.setattr(readers.READERS, "_plugins", None)


def test_built_in_readers_are_listed_with_their_suffixes():
    known = readers.list_readers()
    assert known["mat"] == (".mat",)
    assert set(known["envi"]) == {".hdr", ".img", ".raw", ".dat"}
    assert known["npy"] == (".npy",)


def test_unknown_suffix_names_every_known_reader(tmp_path):
    path = tmp_path / "cube.xyz"
    path.write_bytes(b"x")
    with pytest.raises(DataError, match=r"unsupported file type '\.xyz'; known readers: mat \(\.mat\);.*npy \(\.npy\)"):
        hsi.load_scene(path)


def _write_csv_cube(path, cube):
    rows, cols, bands = cube.shape
    header = f"# {rows} {cols} {bands}\n"
    path.write_text(header + "\n".join(",".join(map(repr, px)) for px in cube.reshape(-1, bands).tolist()))


def _read_csv_cube(path):
    """A third-party-style reader: a text file of pixels with a '# rows cols bands' first line."""
    first, *lines = path.read_text().splitlines()
    rows, cols, bands = map(int, first[1:].split())
    cube = np.array([[float(v) for v in line.split(",")] for line in lines], dtype=np.float32)
    return readers.Contents({"": cube.reshape(rows, cols, bands)}, wavelengths=np.linspace(400, 900, bands))


def test_reader_registered_in_code_loads_a_scene(tmp_path, clean_registry):
    readers.register_reader("pixels-csv", suffixes=(".pxcsv",))(_read_csv_cube)
    cube = np.random.default_rng(0).random((3, 4, 5)).astype(np.float32)
    _write_csv_cube(tmp_path / "cube.pxcsv", cube)
    scene = hsi.load_scene(tmp_path / "cube.pxcsv")
    np.testing.assert_array_equal(scene.cube, cube)
    assert scene.wavelengths[-1] == 900
    assert readers.list_readers()["pixels-csv"] == (".pxcsv",)


def test_a_suffix_belongs_to_one_reader(clean_registry):
    with pytest.raises(ConfigError, match=r"suffixes already read by other readers: \{'\.npy': 'npy'\}"):
        readers.register_reader("other-npy", suffixes=("npy",))(_read_csv_cube)
    with pytest.raises(ConfigError, match="at least one file suffix"):
        readers.register_reader("none", suffixes=())


def test_reader_from_an_installed_package_entry_point(tmp_path, monkeypatch, clean_registry, install_distribution):
    """A package declaring ``[hsi.readers] pixels-csv = plug_reader:read`` is found without being imported."""
    entry_points = "[hsi.readers]\npixels-txt = plug_reader:read\n"
    install_distribution("plug-reader", entry_points, {"plug_reader": textwrap.dedent('''
        import numpy as np
        from hsi.data.readers import Contents, register_reader

        @register_reader("pixels-txt", suffixes=(".pxtxt",))
        def read(path):
            return Contents({"": np.loadtxt(path, dtype=np.float32).reshape(2, 3, -1)})
    ''')})
    monkeypatch.delitem(sys.modules, "plug_reader", raising=False)
    cube = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    np.savetxt(tmp_path / "cube.pxtxt", cube.reshape(-1))
    assert readers.list_readers()["pixels-txt"] == (".pxtxt",)
    np.testing.assert_array_equal(hsi.load_scene(tmp_path / "cube.pxtxt").cube, cube)


def test_broken_entry_point_is_skipped_with_a_warning(clean_registry, install_distribution):
    install_distribution("broken-reader", "[hsi.readers]\nbroken = no_such_module_here:read\n")
    with pytest.warns(RuntimeWarning, match="reader entry point 'broken'.*skipped"):
        known = readers.list_readers()
    assert "broken" not in known and "npy" in known
