"""GeoTIFF (EnMAP), NetCDF (EMIT) and HE5 (PRISMA) products written with the real libraries, read back lazily."""
import h5netcdf
import h5py
import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

import hsi
from hsi.data.mapped import MappedCube

ROWS, COLS, BANDS = 6, 7, 5


@pytest.fixture(scope="module")
def reflectance():
    """Reflectance in [0, 1) on a 1e-4 grid, so int16 DN * 1e-4 reproduces it exactly in float32."""
    dn = np.random.default_rng(3).integers(0, 10000, (ROWS, COLS, BANDS)).astype(np.int16)
    return dn


def _enmap(folder, dn, nodata_pixel=(0, 0)):
    dn = dn.copy()
    dn[nodata_pixel] = -32768
    tif = folder / "ENMAP01-____L2A-DT0000001_20230101T000000Z_001_V010303_20230102T000000Z-SPECTRAL_IMAGE.TIF"
    with rasterio.open(tif, "w", driver="GTiff", width=COLS, height=ROWS, count=BANDS, dtype="int16",
                       crs="EPSG:32633", transform=Affine(30, 0, 500000, 0, -30, 5000000), nodata=-32768,
                       tiled=True, blockxsize=16, blockysize=16) as dst:
        dst.write(dn.transpose(2, 0, 1))
    bands = "".join(f"<bandID number=\"{i + 1}\"><wavelengthCenterOfBand>{420 + 10 * i}</wavelengthCenterOfBand>"
                    f"<FWHMOfBand>{6 + i / 10}</FWHMOfBand><GainOfBand>0.0001</GainOfBand>"
                    f"<OffsetOfBand>0</OffsetOfBand></bandID>" for i in range(BANDS))
    (folder / tif.name.replace("SPECTRAL_IMAGE.TIF", "METADATA.XML")).write_text(
        f"<?xml version=\"1.0\"?><level_X><specific><bandCharacterisation>{bands}</bandCharacterisation>"
        f"</specific></level_X>")
    return tif


def test_enmap_geotiff_cube_wavelengths_nodata_and_geometry(tmp_path, reflectance):
    tif = _enmap(tmp_path, reflectance)
    scene = hsi.load_scene(tif)
    assert isinstance(scene.cube, MappedCube)
    expected = reflectance.astype(np.float32) * np.float32(1e-4)
    np.testing.assert_array_equal(scene.cube[1:4, 2:6], expected[1:4, 2:6])
    assert scene.cube.nodata().sum() == 1 and scene.cube.nodata()[0, 0]
    np.testing.assert_array_equal(scene.cube[0, 0], np.zeros(BANDS, np.float32))
    np.testing.assert_allclose(scene.wavelengths, 420 + 10 * np.arange(BANDS))
    np.testing.assert_allclose(scene.cube.fwhm, 6 + np.arange(BANDS) / 10)
    assert "32633" in scene.cube.geometry["crs"] and scene.cube.geometry["transform"][2] == 500000
    rows, cols = np.array([5, 1, 3]), np.array([0, 6, 2])
    np.testing.assert_array_equal(scene.cube[rows, cols], expected[rows, cols])


def _emit(path, dn, good):
    fill = -9999.0
    refl = dn.astype(np.float32) * np.float32(1e-4)
    refl[2, 3] = fill
    glt_y, glt_x = np.meshgrid(np.arange(1, ROWS + 1), np.arange(1, COLS + 1), indexing="ij")
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"downtrack": ROWS, "crosstrack": COLS, "bands": BANDS, "ortho_y": ROWS, "ortho_x": COLS}
        var = f.create_variable("reflectance", ("downtrack", "crosstrack", "bands"), "f4", fillvalue=fill)
        var[...] = refl
        f.attrs["geotransform"] = np.array([10.0, 0.001, 0.0, 45.0, 0.0, -0.001])
        bands = f.create_group("sensor_band_parameters")
        bands.create_variable("wavelengths", ("bands",), "f4")[...] = 400 + 100 * np.arange(BANDS)
        bands.create_variable("fwhm", ("bands",), "f4")[...] = np.full(BANDS, 8.5)
        bands.create_variable("good_wavelengths", ("bands",), "u1")[...] = good
        loc = f.create_group("location")
        loc.create_variable("lat", ("downtrack", "crosstrack"), "f8")[...] = 45 - glt_y * 0.001
        loc.create_variable("lon", ("downtrack", "crosstrack"), "f8")[...] = 10 + glt_x * 0.001
        loc.create_variable("glt_x", ("ortho_y", "ortho_x"), "i4")[...] = glt_x
        loc.create_variable("glt_y", ("ortho_y", "ortho_x"), "i4")[...] = glt_y
    return refl


def test_emit_netcdf_cube_bad_bands_fill_and_glt(tmp_path, reflectance):
    good = np.array([1, 1, 0, 1, 1], np.uint8)
    refl = _emit(tmp_path / "EMIT_L2A_RFL_001_20230101T000000_2300100_001.nc", reflectance, good)
    scene = hsi.load_scene(tmp_path / "EMIT_L2A_RFL_001_20230101T000000_2300100_001.nc")
    assert scene.cube.shape == (ROWS, COLS, 4) and scene.cube.dropped_bands == [2]
    np.testing.assert_allclose(scene.wavelengths, [400, 500, 700, 800])
    clean = refl.copy()
    clean[2, 3] = 0
    np.testing.assert_array_equal(scene.cube[:, :], clean[:, :, good == 1])
    assert scene.cube.nodata().sum() == 1 and scene.cube.nodata()[2, 3]
    geometry = scene.cube.geometry
    assert geometry["glt_x"].shape == (ROWS, COLS) and geometry["glt_transform"][3] == 45.0
    np.testing.assert_allclose(geometry["lon"][0, :3], [10.001, 10.002, 10.003])


def _prisma(path, dn):
    """VNIR 3 bands (one unused, wavelength 0) stored in decreasing wavelength, SWIR 2 bands, uint16 DN."""
    rng = np.random.default_rng(5)
    vnir = rng.integers(0, 65536, (ROWS, 3, COLS)).astype(np.uint16)
    swir = rng.integers(0, 65536, (ROWS, 2, COLS)).astype(np.uint16)
    with h5py.File(path, "w") as f:
        f.attrs["List_Cw_Vnir"] = np.array([800.0, 0.0, 500.0], np.float32)
        f.attrs["List_Fwhm_Vnir"] = np.array([10.0, 0.0, 9.0], np.float32)
        f.attrs["List_Cw_Swir"] = np.array([1200.0, 2100.0], np.float32)
        f.attrs["List_Fwhm_Swir"] = np.array([11.0, 12.0], np.float32)
        f.attrs["L2ScaleVnirMin"], f.attrs["L2ScaleVnirMax"] = 0.0, 1.0
        f.attrs["L2ScaleSwirMin"], f.attrs["L2ScaleSwirMax"] = 0.0, 0.5
        f.attrs["Epsg_Code"] = 32632
        f.attrs["Product_ULcorner_easting"], f.attrs["Product_ULcorner_northing"] = 600000.0, 4800000.0
        fields = f.create_group("HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields")
        fields["VNIR_Cube"], fields["SWIR_Cube"] = vnir, swir
        geo = f.create_group("HDFEOS/SWATHS/PRS_L2D_HCO/Geolocation Fields")
        geo["Latitude"] = np.full((ROWS, COLS), 43.0, np.float32)
        geo["Longitude"] = np.full((ROWS, COLS), 11.0, np.float32)
    scale = np.float32(1.0 / 65535.0)
    by_wavelength = [vnir[:, 2] * scale, vnir[:, 0] * scale, swir[:, 0] * np.float32(0.5 / 65535.0),
                     swir[:, 1] * np.float32(0.5 / 65535.0)]
    return np.stack(by_wavelength, axis=2)


def test_prisma_he5_bands_sorted_scaled_and_unused_dropped(tmp_path, reflectance):
    expected = _prisma(tmp_path / "PRS_L2D_STD_20230101_0001.he5", reflectance)
    scene = hsi.load_scene(tmp_path / "PRS_L2D_STD_20230101_0001.he5")
    np.testing.assert_allclose(scene.wavelengths, [500, 800, 1200, 2100])
    np.testing.assert_allclose(scene.cube.fwhm, [9, 10, 11, 12])
    np.testing.assert_allclose(scene.cube[2:5, 1:3], expected[2:5, 1:3], rtol=1e-6)
    assert scene.cube.geometry["crs"] == "EPSG:32632" and scene.cube.geometry["lat"].shape == (ROWS, COLS)


def test_formats_hold_the_same_scene(tmp_path, reflectance):
    """One cube written as GeoTIFF, NetCDF and .npy reads back identically (hence identical training data)."""
    tif = _enmap(tmp_path, reflectance, nodata_pixel=(0, slice(0, 0)))
    refl = _emit(tmp_path / "c.nc", reflectance, np.ones(BANDS, np.uint8))
    refl[2, 3] = reflectance[2, 3] * np.float32(1e-4)
    np.save(tmp_path / "c.npy", refl)
    a, b, c = (np.asarray(hsi.load_scene(p).cube) for p in (tif, tmp_path / "c.nc", tmp_path / "c.npy"))
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(np.delete(b.reshape(-1, BANDS), 2 * COLS + 3, 0),
                                  np.delete(c.reshape(-1, BANDS), 2 * COLS + 3, 0))


def test_hsi_inspect_prints_what_was_found(tmp_path, reflectance, capsys):
    from hsi.cli import main

    tif = _enmap(tmp_path, reflectance)
    assert main(["inspect", str(tif)]) == 0
    out = capsys.readouterr().out
    assert "reader: geotiff" in out and f"shape: {ROWS} x {COLS} x {BANDS}" in out
    assert "dtype: int16 in the file, read as float32" in out
    assert "wavelengths: 420 - 460 nm (5 bands)" in out and "fwhm: 6 - 6.4 nm" in out
    assert f"no-data: {1 / (ROWS * COLS):.1%} of pixels" in out and "EPSG:32633" in out
    good = np.array([1, 0, 1, 1, 1], np.uint8)
    _emit(tmp_path / "e.nc", reflectance, good)
    assert main(["inspect", str(tmp_path / "e.nc")]) == 0
    out = capsys.readouterr().out
    assert "bad bands: 1 (file bands [1])" in out and f"glt_x ({ROWS}, {COLS})" in out
    assert f"map grid (GLT): {ROWS} x {COLS} cells, WGS 84 (EPSG:4326), transform (0.001, 0.0, 10.0, 0.0, " \
           f"-0.001, 45.0)" in out


def _prisma_copy(path, cube):
    """``cube`` (integer-valued) as a PRISMA L2D-style HE5: uint16 DN with L2Scale 0 - 65535 (a scale of exactly
    1), VNIR the first bands stored in decreasing wavelength as PRISMA does, SWIR the rest."""
    split = cube.shape[2] // 3
    wavelengths = 400.0 + 10.0 * np.arange(cube.shape[2])
    dn = cube.astype(np.uint16).transpose(0, 2, 1)                 # (lines, bands, samples)
    with h5py.File(path, "w") as f:
        f.attrs["List_Cw_Vnir"], f.attrs["List_Cw_Swir"] = wavelengths[:split][::-1], wavelengths[split:]
        for part in ("Vnir", "Swir"):
            f.attrs[f"L2Scale{part}Min"], f.attrs[f"L2Scale{part}Max"] = 0.0, 65535.0
        fields = f.create_group("HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields")
        fields["VNIR_Cube"], fields["SWIR_Cube"] = dn[:, :split][:, ::-1], dn[:, split:]
    return path


def test_one_cube_as_geotiff_netcdf_he5_and_envi_trains_to_identical_metrics(tmp_path, field, field_config):
    """The field of Indian Pines written as GeoTIFF, EMIT-style NetCDF, PRISMA-style HE5 and ENVI trains to the
    same metrics.json."""
    import json

    import spectral.io.envi as envi

    from hsi.pipeline import train

    cube = np.asarray(field.scene.cube, dtype=np.float32)
    rows, cols, bands = cube.shape
    np.save(tmp_path / "gt.npy", np.where(field.scene.labels >= 0,
                                          field.scene.label_ids[np.maximum(field.scene.labels, 0)], 0))
    with rasterio.open(tmp_path / "c.tif", "w", driver="GTiff", width=cols, height=rows, count=bands,
                       dtype="float32", crs="EPSG:32616", transform=Affine(20, 0, 500000, 0, -20, 4500000)) as dst:
        dst.write(cube.transpose(2, 0, 1))
    with h5netcdf.File(tmp_path / "c.nc", "w") as f:
        f.dimensions = {"downtrack": rows, "crosstrack": cols, "bands": bands}
        f.create_variable("reflectance", ("downtrack", "crosstrack", "bands"), "f4")[...] = cube
    _prisma_copy(tmp_path / "c.he5", cube)
    envi.save_image(str(tmp_path / "c.hdr"), cube)
    np.testing.assert_array_equal(np.asarray(hsi.load_scene(tmp_path / "c.he5").cube), cube)
    metrics = []
    for name in ("c.tif", "c.nc", "c.he5", "c.hdr"):
        config = field_config(cube=str(tmp_path / name), gt=str(tmp_path / "gt.npy"), model="svm", pca=5, patch=1)
        train(config, tmp_path / name.replace(".", "_"), progress=False)
        metrics.append((tmp_path / name.replace(".", "_") / "metrics.json").read_bytes())
    assert metrics[0] == metrics[1] == metrics[2] == metrics[3]
    assert json.loads(metrics[0])["oa"] > 0.5
