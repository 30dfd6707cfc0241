"""Streaming maps: tile by tile from a memory-mapped ENVI cube into memory-mapped outputs, georeferencing kept."""
import numpy as np
import pytest
import torch

import hsi
from hsi.data.envi import read_header
from hsi.inference import predict_scene
from hsi.stream import stream_map

MAP_INFO = "UTM, 1.000, 1.000, 501230.000, 4481560.000, 2.0000000000e+01, 2.0000000000e+01, 16, North, " \
           "WGS-84, units=Meters"
WKT = 'PROJCS["WGS_1984_UTM_Zone_16N",GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,' \
      '298.257223563]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],' \
      'PROJECTION["Transverse_Mercator"],PARAMETER["False_Easting",500000.0],PARAMETER["False_Northing",0.0],' \
      'PARAMETER["Central_Meridian",-87.0],PARAMETER["Scale_Factor",0.9996],PARAMETER["Latitude_Of_Origin",0.0],' \
      'UNIT["Meter",1.0]]'


@pytest.fixture(scope="module")
def flight_line(tmp_path_factory, indian_pines):
    """A 40x52 crop of Indian Pines as a georeferenced int16 BIL ENVI file with a no-data corner."""
    folder = tmp_path_factory.mktemp("line")
    cube = indian_pines.cube[30:70, 50:102].astype(np.int16)
    cube[:4, :5] = -9999
    cube.transpose(0, 2, 1).astype(">i2").tofile(folder / "line.img")
    waves = ", ".join(f"{w:.2f}" for w in indian_pines.wavelengths)
    (folder / "line.hdr").write_text(
        f"ENVI\nsamples = 52\nlines = 40\nbands = 200\nheader offset = 0\nfile type = ENVI Standard\n"
        f"data type = 2\ninterleave = bil\nbyte order = 1\ndata ignore value = -9999\n"
        f"map info = {{{MAP_INFO}}}\ncoordinate system string = {{{WKT}}}\npixel size = {{20, 20, units=Meters}}\n"
        f"wavelength units = Nanometers\nwavelength = {{{waves}}}\n")
    return folder / "line.hdr"


@pytest.fixture(scope="module")
def trained(untrained_hybridsn):
    return untrained_hybridsn


@pytest.fixture(scope="module")
def streamed(tmp_path_factory, flight_line, trained):
    torch.set_num_threads(1)
    scene = hsi.load_scene(flight_line)
    formats = ["envi", "npy", "png"]
    try:
        import rasterio  # noqa: F401

        formats.append("tif")
    except ImportError:
        pass
    out = tmp_path_factory.mktemp("out") / "map"
    written = stream_map(trained, scene, out, formats=formats, probs=True, tile=9)   # 5 x 6 tiles
    return scene, written


def test_streamed_map_equals_the_whole_cube_prediction(streamed, trained):
    scene, written = streamed
    assert scene.cube.raw.dtype == np.dtype(">i2")                 # read from the file, not loaded
    whole, probs = predict_scene(trained, np.asarray(scene.cube), mode="dense", tile=1000, return_probs=True)
    nodata = scene.cube.nodata()
    assert nodata.sum() == 20
    expected = np.where(nodata, 0, whole + 1)
    values = np.fromfile(written["envi"].with_suffix(".img"), dtype=np.uint8).reshape(40, 52)
    np.testing.assert_array_equal(values, expected)
    ids = np.load(written["npy"])
    np.testing.assert_array_equal(ids, np.concatenate([[0], trained.label_ids])[expected])
    cube = np.fromfile(written["probs"].with_suffix(".img"), dtype="<f4").reshape(40, 52, 17)
    np.testing.assert_allclose(cube[~nodata][:, :16], probs[~nodata], atol=1e-4)   # float rounding
    np.testing.assert_array_equal(cube[..., 16], cube[..., :16].max(-1))
    assert (cube[nodata] == 0).all() and written["png"].is_file()
    assert not [p for p in written["npy"].parent.iterdir() if p.name.startswith(".")]   # no temporary left


def test_envi_headers_keep_the_georeferencing(streamed, flight_line):
    import spectral

    _, written = streamed
    source = read_header(flight_line)
    for hdr in (written["envi"], written["probs"]):
        header = read_header(hdr)
        for key in ("map info", "coordinate system string", "pixel size"):
            assert header[key] == source[key]
        assert header["source wavelength"] == source["wavelength"]
    image = spectral.open_image(str(written["envi"]))
    ip = hsi.load_scene("indian_pines")
    assert image.metadata["class names"][1:] == [f"{i} {n}" for i, n in zip(ip.label_ids, ip.class_names)]
    assert image.metadata["map info"][3:5] == ["501230.000", "4481560.000"]
    assert read_header(written["probs"])["band names"].endswith("confidence")


def test_geotiff_has_the_input_transform_crs_and_colours(streamed, flight_line, trained):
    rasterio = pytest.importorskip("rasterio")
    _, written = streamed
    with rasterio.open(flight_line.with_suffix(".img")) as source, rasterio.open(written["tif"]) as tif:
        assert source.crs is not None and tif.crs == source.crs
        assert tif.transform == source.transform
        assert tif.transform.c == 501230.0 and tif.transform.f == 4481560.0 and tif.transform.a == 20.0
        values = np.fromfile(written["envi"].with_suffix(".img"), dtype=np.uint8).reshape(40, 52)
        np.testing.assert_array_equal(tif.read(1), values)
        assert tif.colormap(1)[1][:3] == tuple(int(v) for v in trained.palette[0])
        assert tif.tags(1)["class_1"] == f"{trained.label_ids[0]} {trained.class_names[0]}"


def test_predict_scene_gives_nodata_pixels_no_class(streamed, trained):
    scene, written = streamed
    labels = predict_scene(trained, scene, mode="dense", tile=1000)
    values = np.fromfile(written["envi"].with_suffix(".img"), dtype=np.uint8).reshape(40, 52)
    assert (labels[:4, :5] == -1).all() and (labels >= 0).sum() == 40 * 52 - 20
    np.testing.assert_array_equal(labels + 1, values)


def test_envi_map_written_under_a_relative_prefix(streamed, flight_line, trained, tmp_path):
    """The streamed map is already the .img file; under a relative prefix it used to be truncated while it was
    still memory-mapped and read (SIGBUS). A child process, so that a crash fails this test, not the session."""
    import subprocess
    import sys

    torch.save(trained, tmp_path / "model.pt")
    code = ("import torch, hsi; from hsi.stream import stream_map; "
            f"m = torch.load({str(tmp_path / 'model.pt')!r}, weights_only=False); "
            f"stream_map(m, hsi.load_scene({str(flight_line)!r}), 'rel/map', formats=['envi'], tile=9)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    _, written = streamed
    np.testing.assert_array_equal(np.fromfile(tmp_path / "rel" / "map.img", dtype=np.uint8),
                                  np.fromfile(written["envi"].with_suffix(".img"), dtype=np.uint8))
