"""Maps back into GIS: `hsi predict --format tif,cog,gpkg` on a GeoTIFF scene and on an EMIT-style swath with a
GLT, read back with rasterio and pyogrio (CRS, transform, a pixel's map coordinates, values, class names)."""
import xml.etree.ElementTree as ET

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from pyproj import CRS
from rasterio.transform import Affine

from hsi.cli import main
from hsi.errors import ConfigError
from tests.data import geo_products

TRANSFORM = Affine(20, 0, 500000, 0, -20, 4500000)


@pytest.fixture(scope="module")
def geotiff_run(tmp_path_factory, field):
    """The Indian Pines field as a GeoTIFF in UTM 16N (its labels as .npy), an SVM trained on it."""
    folder = tmp_path_factory.mktemp("gis")
    cube = np.asarray(field.scene.cube, dtype=np.float32)
    rows, cols, bands = cube.shape
    with rasterio.open(folder / "field.tif", "w", driver="GTiff", width=cols, height=rows, count=bands,
                       dtype="float32", crs="EPSG:32616", transform=TRANSFORM) as dst:
        dst.write(cube.transpose(2, 0, 1))
    np.save(folder / "gt.npy", np.where(field.scene.labels >= 0,
                                        field.scene.label_ids[np.maximum(field.scene.labels, 0)], 0))
    run = folder / "run"
    assert main(["train", "--cube", str(folder / "field.tif"), "--gt", str(folder / "gt.npy"), "--model", "svm",
                 "--pca", "5", "--patch", "1", "--train-ratio", "0.2", "--no-map", "--out", str(run), "-q"]) == 0
    assert main(["predict", str(run), "--format", "tif,gpkg,npy", "--out", str(folder / "map"), "-q"]) == 0
    return folder, field.scene


def test_geotiff_map_has_the_inputs_crs_transform_values_and_names(geotiff_run):
    folder, scene = geotiff_run
    ids = np.load(folder / "map.npy")
    with rasterio.open(folder / "field.tif") as source, rasterio.open(folder / "map.tif") as tif:
        assert tif.crs == source.crs and tif.transform == source.transform and tif.nodata == 0
        assert tif.xy(7, 11) == source.xy(7, 11) == (500000 + 20 * 11.5, 4500000 - 20 * 7.5)
        values = tif.read(1)
        assert str(folder / "map.tif.aux.xml") in tif.files
        assert tif.tags()["geometry"] == "the scene's map grid"
    lookup = np.concatenate([[0], scene.label_ids])
    np.testing.assert_array_equal(lookup[values], ids)
    categories = [c.text for c in ET.parse(folder / "map.tif.aux.xml").iter("Category")]
    assert categories == ["Unclassified", *scene.class_names]


def test_gpkg_polygons_cover_each_class_and_carry_id_name_area(geotiff_run):
    folder, scene = geotiff_run
    ids = np.load(folder / "map.npy")
    info = pyogrio.read_info(folder / "map.gpkg", layer="classes")
    assert CRS.from_user_input(info["crs"]) == CRS.from_epsg(32616)
    assert list(info["fields"]) == ["class_id", "class_name", "area_m2"]
    _, _, wkb, (class_id, class_name, area) = pyogrio.raw.read(folder / "map.gpkg", layer="classes")
    polygons = shapely.from_wkb(wkb)
    cols, rows = np.meshgrid(np.arange(ids.shape[1]) + 0.5, np.arange(ids.shape[0]) + 0.5)
    x, y = TRANSFORM.c + TRANSFORM.a * cols, TRANSFORM.f + TRANSFORM.e * rows
    for label_id, name in zip(scene.label_ids, scene.class_names, strict=True):
        mine = class_id == label_id
        assert set(class_name[mine]) <= {name}
        inside = shapely.contains_xy(shapely.union_all(polygons[mine]), x, y) if mine.any() else np.zeros_like(x)
        np.testing.assert_array_equal(inside, ids == label_id)
        assert area[mine].sum() == pytest.approx((ids == label_id).sum() * 400.0)


def test_cog_is_cloud_optimized_with_the_same_map(geotiff_run):
    folder, _ = geotiff_run
    assert main(["predict", str(folder / "run"), "--format", "cog", "--out", str(folder / "cog"), "-q"]) == 0
    with rasterio.open(folder / "cog.tif") as cog, rasterio.open(folder / "map.tif") as tif:
        assert cog.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and cog.crs == tif.crs
        assert cog.transform == tif.transform and cog.colormap(1) == tif.colormap(1)
        np.testing.assert_array_equal(cog.read(1), tif.read(1))


def test_glt_swath_map_is_each_sensor_pixel_placed_by_its_glt_entry(geotiff_run, tmp_path):
    """The same cube as an EMIT-style swath: tif and gpkg are on the GLT's map grid in EPSG:4326, each cell holding
    the class of the sensor pixel its GLT entry names (0 where none); npy stays in sensor geometry."""
    folder, scene = geotiff_run
    with rasterio.open(folder / "field.tif") as src:
        cube = src.read().transpose(1, 2, 0)
    grid = (cube.shape[0] + 5, cube.shape[1] + 3)
    glt_y, glt_x = geo_products.random_glt(cube.shape[:2], grid, seed=7)
    nc = geo_products.write_emit(tmp_path / "EMIT_L2A_RFL_001.nc", cube, glt_y, glt_x)
    assert main(["predict", str(folder / "run"), "--cube", str(nc), "--format", "tif,gpkg,npy", "--out",
                 str(tmp_path / "swath"), "-q"]) == 0
    sensor = np.load(tmp_path / "swath.npy")
    np.testing.assert_array_equal(sensor, np.load(folder / "map.npy"))       # one cube, one prediction
    classes = np.searchsorted(np.concatenate([[0], scene.label_ids]), sensor)   # 0 unclassified, k + 1 class k
    expected = np.where(glt_y > 0, classes[glt_y - 1, glt_x - 1], 0)
    with rasterio.open(tmp_path / "swath.tif") as tif:
        assert tif.crs == CRS.from_epsg(4326) and tif.shape == grid
        assert tif.transform == Affine.from_gdal(*geo_products.GLT_GEOTRANSFORM)
        assert tif.tags()["geometry"] == "orthorectified through the product's GLT"
        np.testing.assert_array_equal(tif.read(1), expected)
    info = pyogrio.read_info(tmp_path / "swath.gpkg", layer="classes")
    assert CRS.from_user_input(info["crs"]) == CRS.from_epsg(4326) and info["features"] > 0


def test_a_map_without_placement_refuses_gpkg_and_two_formats_of_one_file(tmp_path, field):
    from hsi.export import export_map

    with pytest.raises(ConfigError, match="the gpkg format places polygons on a map, but this map is in sensor"):
        export_map(field.scene.labels, field.scene, tmp_path / "m", formats=("npy", "gpkg"))
    with pytest.raises(ConfigError, match=r"map format 'cog' writes \['.tif', '.tif.aux.xml'\], as another asked"):
        export_map(field.scene.labels, field.scene, tmp_path / "m", formats=("tif", "cog"))
    assert not list(tmp_path.iterdir())


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_glt_swath_in_sensor_geometry_keeps_rows_cols_with_the_products_lat_lon(geotiff_run, tmp_path):
    """--geometry sensor: the GeoTIFF holds the class of each sensor pixel in its own row and column, and
    _latlon.tif the product's location/lat and location/lon arrays; gpkg refuses, pointing to --geometry ortho."""
    import h5py

    folder, scene = geotiff_run
    with rasterio.open(folder / "field.tif") as src:
        cube = src.read().transpose(1, 2, 0)
    glt_y, glt_x = geo_products.random_glt(cube.shape[:2], (cube.shape[0] + 2, cube.shape[1] + 4), seed=3)
    nc = geo_products.write_emit(tmp_path / "EMIT_L2A_RFL_002.nc", cube, glt_y, glt_x)
    assert main(["predict", str(folder / "run"), "--cube", str(nc), "--format", "tif,npy", "--geometry", "sensor",
                 "--out", str(tmp_path / "sensor"), "-q"]) == 0
    classes = np.searchsorted(np.concatenate([[0], scene.label_ids]), np.load(tmp_path / "sensor.npy"))
    with rasterio.open(tmp_path / "sensor.tif") as tif:
        assert tif.shape == cube.shape[:2] and tif.crs is None
        assert tif.tags()["geometry"].startswith("sensor geometry: rows and columns of the product")
        np.testing.assert_array_equal(tif.read(1), classes)
    with rasterio.open(tmp_path / "sensor_latlon.tif") as latlon, h5py.File(nc) as product:
        assert latlon.descriptions == ("latitude", "longitude") and latlon.dtypes == ("float64", "float64")
        np.testing.assert_array_equal(latlon.read(1), product["location/lat"][...])
        np.testing.assert_array_equal(latlon.read(2), product["location/lon"][...])
    assert main(["predict", str(folder / "run"), "--cube", str(nc), "--format", "gpkg", "--geometry", "sensor",
                 "--out", str(tmp_path / "refused"), "-q"]) == 2
    assert not list(tmp_path.glob("refused*"))


def _envi_probs(path, k):
    import spectral.io.envi as envi

    return np.asarray(envi.open(str(path)).load())[:, :, :k]


def test_probs_geotiff_one_named_float32_band_per_class_on_the_maps_grid(geotiff_run, tmp_path):
    """--probs with tif: _probs.tif holds the ENVI cube's probabilities, one float32 band per class named by it, in
    the input's CRS and transform; on a GLT swath each cell holds its GLT pixel's probabilities. With gpkg alone
    --probs writes the ENVI cube."""
    folder, scene = geotiff_run
    k = len(scene.class_names)
    assert main(["predict", str(folder / "run"), "--format", "tif", "--probs", "--out", str(tmp_path / "p"),
                 "-q"]) == 0
    expected = _envi_probs(tmp_path / "p_probs.hdr", k)
    with rasterio.open(folder / "field.tif") as source, rasterio.open(tmp_path / "p_probs.tif") as probs:
        assert probs.count == k and set(probs.dtypes) == {"float32"}
        assert probs.descriptions == tuple(scene.class_names)
        assert probs.crs == source.crs and probs.transform == source.transform
        np.testing.assert_array_equal(probs.read().transpose(1, 2, 0), expected)
    with rasterio.open(folder / "field.tif") as src:
        cube = src.read().transpose(1, 2, 0)
    glt_y, glt_x = geo_products.random_glt(cube.shape[:2], (cube.shape[0] + 1, cube.shape[1] + 2), seed=5)
    nc = geo_products.write_emit(tmp_path / "EMIT_L2A_RFL_003.nc", cube, glt_y, glt_x)
    assert main(["predict", str(folder / "run"), "--cube", str(nc), "--format", "cog", "--probs", "--out",
                 str(tmp_path / "swath"), "-q"]) == 0
    sensor = _envi_probs(tmp_path / "swath_probs.hdr", k)
    with rasterio.open(tmp_path / "swath_probs.tif") as probs:
        assert probs.crs == CRS.from_epsg(4326) and probs.descriptions == tuple(scene.class_names)
        placed = np.where((glt_y > 0)[..., None], sensor[glt_y - 1, glt_x - 1], 0)
        np.testing.assert_array_equal(probs.read().transpose(1, 2, 0), placed)
    assert main(["predict", str(folder / "run"), "--format", "gpkg", "--probs", "--out", str(tmp_path / "g"),
                 "-q"]) == 0
    assert sorted(p.name for p in tmp_path.glob("g*")) == ["g.gpkg", "g_probs.hdr", "g_probs.img"]
