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
from tests.data import geo_products

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
    assert vector["label_ids"] == [1, 2, 3, 4] and vector["grid"] == "cube"
    assert "wheat" in (out / "report.txt").read_text()


def _dicts(tree):
    if isinstance(tree, dict):
        yield tree
        for value in tree.values():
            yield from _dicts(value)


@pytest.mark.parametrize(("suffix", "driver"), [(".shp", "ESRI Shapefile"), (".geojson", "GeoJSON")])
def test_shapefile_and_geojson_label_like_the_geopackage(scene_files, tmp_path, suffix, driver):
    tif, gpkg, polygons = scene_files
    other = tmp_path / f"fields{suffix}"
    crs = "EPSG:3857"                   # yet another CRS: web mercator
    to_mercator = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    moved = [shapely.Polygon(np.column_stack(to_mercator.transform(*np.array(p.exterior.coords).T)))
             for p in polygons]
    pyogrio.raw.write(other, shapely.to_wkb(moved), [np.array([c for c, _ in FIELDS], dtype=object)],
                      fields=["crop"], geometry_type="Polygon", crs=crs, driver=driver)
    reference = hsi.load_scene(tif, gpkg, label_field="crop", overlap="first")
    scene = hsi.load_scene(tif, other, label_field="crop", overlap="first")
    assert scene.class_names == reference.class_names
    np.testing.assert_array_equal(scene.labels, reference.labels)


def test_whole_number_classes_keep_their_codes_as_label_ids(scene_files, tmp_path):
    """Crop codes (21 wheat, 5 maize, 30 barley) stay the label ids, sorted by value, whatever the layer's order."""
    tif, _, polygons = scene_files
    codes = tmp_path / "codes.gpkg"
    pyogrio.raw.write(codes, shapely.to_wkb(polygons[:2]), [np.array([21, 5], dtype=np.int32)], fields=["code"],
                      geometry_type="Polygon", crs="EPSG:4326", driver="GPKG")
    scene = hsi.load_scene(tif, codes, label_field="code")
    inside = _centres_inside(polygons[:2])
    assert scene.label_ids.tolist() == [5, 21] and scene.class_names == ["5", "21"]
    np.testing.assert_array_equal(scene.labels, np.select([inside[1], inside[0]], [0, 1], -1))


#: the swath's map grid (rows, cols) and its sensor geometry
GRID, SENSOR = (9, 10), (6, 7)


def test_swath_polygons_label_sensor_pixels_through_the_glt(tmp_path, caplog):
    """An EMIT-style swath, polygons in UTM 32N: a sensor pixel takes the classes of the map cells whose GLT entry
    names it (cell centres inside the polygon, counted directly); overlaps refused, dropped or first-wins."""
    glt_y, glt_x = geo_products.random_glt(SENSOR, GRID, seed=4)
    nc = geo_products.write_emit(tmp_path / "EMIT_L2A_RFL_001.nc",
                                 np.random.default_rng(1).random((*SENSOR, 3)).astype(np.float32), glt_y, glt_x)
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32632", always_xy=True)
    lonlat = [[(10.0012, 44.9993), (10.0061, 44.9991), (10.0058, 44.9952), (10.0015, 44.9949)],   # grass
              [(10.0049, 44.9972), (10.0097, 44.9975), (10.0094, 44.9921), (10.0052, 44.9925)],   # trees
              [(11.5, 46.0), (11.6, 46.0), (11.6, 46.1)]]                                       # outside
    utm = [shapely.Polygon(np.column_stack(to_utm.transform(*np.array(ring).T))) for ring in lonlat]
    gpkg = tmp_path / "survey.gpkg"
    pyogrio.raw.write(gpkg, shapely.to_wkb(utm), [np.array(["grass", "trees", "grass"], dtype=object)],
                      fields=["cover"], geometry_type="Polygon", crs="EPSG:32632", driver="GPKG")
    back = Transformer.from_crs("EPSG:32632", "EPSG:4326", always_xy=True)
    x, y = geo_products.cell_centres(GRID)
    cells = [shapely.contains_xy(shapely.Polygon(np.column_stack(back.transform(*np.array(p.exterior.coords).T))),
                                 x, y) for p in utm]
    per_pixel = np.zeros((2, *SENSOR), dtype=bool)                     # grass, trees: some cell of the pixel in it
    first = np.full(SENSOR, -1)
    for (i, j), row, col in zip(np.ndindex(GRID), glt_y.ravel() - 1, glt_x.ravel() - 1, strict=True):
        if row < 0:
            continue
        hits = [k for k in range(2) if cells[k][i, j]]
        per_pixel[hits, row, col] = True
        if hits and (first[row, col] < 0 or hits[0] < first[row, col]):
            first[row, col] = hits[0]
    clash = per_pixel.all(axis=0)
    assert per_pixel[0].sum() > 3 and per_pixel[1].sum() > 3 and clash.any()
    with pytest.raises(DataError, match=rf": {clash.sum()} pixels lie inside polygons of different classes"):
        hsi.load_scene(nc, gpkg, label_field="cover")
    with caplog.at_level(logging.WARNING, logger="hsi"):
        scene = hsi.load_scene(nc, gpkg, label_field="cover", overlap="first")
    assert "1 of 3 polygons lie outside the scene" in caplog.text
    assert scene.class_names == ["grass", "trees"]
    np.testing.assert_array_equal(scene.labels, first)
    dropped = hsi.load_scene(nc, gpkg, label_field="cover", overlap="drop")
    np.testing.assert_array_equal(dropped.labels, np.where(clash, -1, first))


def test_disjoint_split_draws_whole_polygons_as_parcels(tmp_path):
    """With polygon ground truth, ``--split disjoint`` draws the polygons themselves: no polygon's pixels are in
    two subsets, no test window holds a training or validation pixel, another seed draws other polygons, and
    polygons sharing a pixel are one parcel."""
    from hsi.cli import main
    from hsi.data.splits import Split, make_split
    from hsi.leakage import window_leakage

    rows, cols = 36, 48
    tif = tmp_path / "cube.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=cols, height=rows, count=BANDS, dtype="float32",
                       crs="EPSG:32633", transform=TRANSFORM) as dst:
        dst.write(np.random.default_rng(4).random((BANDS, rows, cols)).astype(np.float32))
    boxes = [(r, c) for r in range(0, rows, 6) for c in range(0, cols, 6)]        # 6 x 8 fields of 5 x 5 pixels
    polygons = [shapely.box(500000 + 30 * c, 5000000 - 30 * (r + 5), 500000 + 30 * (c + 5), 5000000 - 30 * r)
                for r, c in boxes]
    polygons.append(shapely.box(500000 + 30 * 3, 5000000 - 30 * 5, 500000 + 30 * 8, 5000000 - 30 * 1))  # overlaps 0, 1
    crops = np.array([["wheat", "maize", "barley"][i % 3] for i in range(len(boxes))] + ["wheat"], dtype=object)
    crops[1] = "wheat"                                        # so the overlap joins fields 0 and 1, both wheat
    gpkg = tmp_path / "fields.gpkg"
    pyogrio.raw.write(gpkg, shapely.to_wkb(polygons), [crops], fields=["crop"], layer="fields",
                      geometry_type="Polygon", crs="EPSG:32633", driver="GPKG")
    scene = hsi.load_scene(tif, gpkg, label_field="crop", overlap="first")
    assert scene.parcels is not None and len(np.unique(scene.parcels[scene.labels >= 0])) == len(boxes) - 1
    field = np.full((rows, cols), -1)
    for i, (r, c) in enumerate(boxes):
        field[r:r + 5, c:c + 5] = i
    assert len(set(scene.parcels[field == 0].tolist()) | set(scene.parcels[field == 1].tolist())) == 1
    splits = [make_split(scene.labels, "disjoint", train_ratio=0.3, patch_size=3, seed=seed,
                         parcels=scene.parcels) for seed in (0, 1)]
    for split in splits:
        subsets = np.select([split.train >= 0, split.val >= 0, split.test >= 0], [0, 1, 2], -1)
        for parcel in np.unique(scene.parcels[scene.parcels >= 0]):
            used = set(subsets[(scene.parcels == parcel) & (subsets >= 0)].tolist())
            assert len(used) <= 1, f"parcel {parcel} is in subsets {used}"
        assert window_leakage(split, 1)["leaked_pixels"] == 0
        assert all(n > 0 for name in ("train", "test") for n in split.counts(scene.n_classes)[name])
        assert split.info["parcels"].startswith("the polygons of the ground truth layer")
    assert not np.array_equal(splits[0].train, splits[1].train)
    out = tmp_path / "run"
    assert main(["train", "--cube", str(tif), "--gt", str(gpkg), "--label-field", "crop", "--overlap", "first",
                 "--split", "disjoint", "--train-ratio", "0.3", "--model", "svm", "--pca", "3", "--patch", "3",
                 "--no-map", "--out", str(out), "-q"]) == 0
    saved = Split.load(out / "split.npz")
    np.testing.assert_array_equal(saved.train, splits[0].train)
