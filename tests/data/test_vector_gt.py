"""Field polygons in another CRS as ground truth: rasterised labels equal a point-in-polygon count of pixel centres."""
import json
import logging

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from pyproj import Transformer
from rasterio.transform import Affine

import hsi
from hsi.errors import DataError

ROWS, COLS, BANDS = 12, 14, 4
TRANSFORM = Affine(30, 0, 500000, 0, -30, 5000000)
#: polygons in the scene's UTM 33N metres (vertices off the pixel grid): class, outline; barley overlaps wheat
FIELDS = [("wheat", [(500031, 4999990), (500200, 4999975), (500190, 4999800), (500040, 4999810)]),
          ("maize", [(500250, 4999700), (500400, 4999690), (500410, 4999660), (500240, 4999655)]),
          ("barley", [(500170, 4999900), (500300, 4999895), (500290, 4999760), (500165, 4999770)]),
          ("rye", [(600000, 5100000), (600100, 5100000), (600100, 5100100)])]   # outside the scene


@pytest.fixture
def scene_files(tmp_path):
    cube = np.random.default_rng(2).random((ROWS, COLS, BANDS)).astype(np.float32)
    tif = tmp_path / "cube.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=COLS, height=ROWS, count=BANDS, dtype="float32",
                       crs="EPSG:32633", transform=TRANSFORM) as dst:
        dst.write(cube.transpose(2, 0, 1))
    to_wgs84 = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    polygons = [shapely.Polygon(np.column_stack(to_wgs84.transform(*np.array(ring).T))) for _, ring in FIELDS]
    gpkg = tmp_path / "fields.gpkg"
    pyogrio.raw.write(gpkg, shapely.to_wkb(polygons), [np.array([c for c, _ in FIELDS], dtype=object)],
                      fields=["crop"], layer="survey", geometry_type="Polygon", crs="EPSG:4326", driver="GPKG")
    return tif, gpkg, polygons


def _centres_inside(polygons):
    """Per polygon: which pixel centres lie inside it, tested directly in the scene's CRS."""
    back = Transformer.from_crs("EPSG:4326", "EPSG:32633", always_xy=True)
    cols, rows = np.meshgrid(np.arange(COLS) + 0.5, np.arange(ROWS) + 0.5)
    x, y = TRANSFORM.a * cols + TRANSFORM.b * rows + TRANSFORM.c, TRANSFORM.d * cols + TRANSFORM.e * rows + TRANSFORM.f
    return [shapely.contains_xy(shapely.Polygon(np.column_stack(back.transform(*np.array(p.exterior.coords).T))),
                                x, y) for p in polygons]


def test_polygons_rasterise_to_the_pixel_centres_inside_them(scene_files, caplog):
    tif, gpkg, polygons = scene_files
    inside = _centres_inside(polygons)
    assert inside[0].sum() > 10 and (inside[0] & inside[2]).any() and not inside[3].any()
    with pytest.raises(DataError, match=rf"{(inside[0] & inside[2]).sum()} pixels lie inside polygons of different"):
        hsi.load_scene(tif, gpkg, label_field="crop")
    with caplog.at_level(logging.WARNING, logger="hsi"):
        scene = hsi.load_scene(tif, gpkg, label_field="crop", overlap="first")
    assert "1 of 4 polygons lie outside the scene" in caplog.text
    assert scene.class_names == ["barley", "maize", "wheat"]          # sorted values; rye labels nothing
    names = np.array(scene.class_names + ["-"])[scene.labels]
    expected = np.full((ROWS, COLS), "-", dtype=object)
    for (crop, _), mask in reversed(list(zip(FIELDS, inside))):         # the first polygon wins
        expected[mask] = crop
    np.testing.assert_array_equal(names, expected)
    dropped = hsi.load_scene(tif, gpkg, label_field="crop", overlap="drop")
    assert (dropped.labels[inside[0] & inside[2]] == -1).all()
    assert (dropped.labels >= 0).sum() == (scene.labels >= 0).sum() - (inside[0] & inside[2]).sum()


def test_unknown_label_field_lists_the_attributes(scene_files):
    tif, gpkg, _ = scene_files
    with pytest.raises(hsi.errors.ConfigError, match=r"no attribute 'kind'; the layer's attributes are \['crop'\]"):
        hsi.load_scene(tif, gpkg, label_field="kind")


def test_train_from_polygons_records_the_layer_and_names_classes(scene_files, tmp_path):
    from hsi.cli import main

    tif, gpkg, _ = scene_files
    out = tmp_path / "run"
    assert main(["train", "--cube", str(tif), "--gt", str(gpkg), "--label-field", "crop", "--overlap", "first",
                 "--model", "svm", "--pca", "3", "--patch", "1", "--train-ratio", "0.5", "--out", str(out),
                 "-q"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["label_field"] == "crop" and config["config"]["overlap"] == "first"
    vector = next(v["vector"] for v in _dicts(config) if "vector" in v)
    assert vector["layer"] == "survey" and vector["field"] == "crop" and vector["crs"] == "EPSG:4326"
    origin = config["scene"]["origin"]
    assert vector["classes"] == ["barley", "maize", "rye", "wheat"] and len(origin["gt"]["sha256"]) == 64
    assert "wheat" in (out / "report.txt").read_text()


def _dicts(tree):
    if isinstance(tree, dict):
        yield tree
        for value in tree.values():
            yield from _dicts(value)
