"""ENVI and .npy cubes opened memory-mapped: every interleave, byte order and dtype reads the same pixels."""
import sys

import numpy as np
import pytest

import hsi
from hsi.data.mapped import MappedCube
from hsi.data.preprocess import fit_pca
from hsi.data.scenes import arrays_sha256

LAYOUTS = {"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}   # (rows, cols, bands) -> file axis order


def write_envi(path, cube, interleave="bsq", dtype="<i2", offset=0, extra=""):
    """Write ``cube`` (rows, cols, bands) as an ENVI image by hand: raw bytes after ``offset`` junk bytes."""
    dtype = np.dtype(dtype)
    code = {("i", 2): 2, ("u", 2): 12, ("f", 4): 4, ("f", 8): 5, ("u", 1): 1}[dtype.kind, dtype.itemsize]
    data = np.ascontiguousarray(cube.transpose(LAYOUTS[interleave])).astype(dtype)
    path.with_suffix(".img").write_bytes(b"\x7f" * offset + data.tobytes())
    big = 1 if dtype.byteorder == ">" or (dtype.byteorder == "=" and np.little_endian is False) else 0
    path.with_suffix(".hdr").write_text(
        f"ENVI\ndescription = {{test cube}}\nsamples = {cube.shape[1]}\nlines = {cube.shape[0]}\n"
        f"bands = {cube.shape[2]}\nheader offset = {offset}\nfile type = ENVI Standard\ndata type = {code}\n"
        f"interleave = {interleave}\nbyte order = {big}\n{extra}")
    return path.with_suffix(".hdr")


@pytest.fixture(scope="module")
def crop(indian_pines):
    """A real 13x17x200 crop of Indian Pines (integer radiances, exact in int16 and float32)."""
    return indian_pines.cube[40:53, 60:77]


@pytest.mark.parametrize("dtype", ["<i2", ">i2", "<f4", ">f4", ">u2", "<f8"])
@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
def test_every_layout_reads_the_same_cube(tmp_path, crop, interleave, dtype):
    hdr = write_envi(tmp_path / "cube.hdr", crop, interleave, dtype, offset=37)
    scene = hsi.load_scene(hdr)
    assert isinstance(scene.cube, MappedCube) and isinstance(scene.cube.raw.base, np.memmap)
    assert scene.cube.shape == crop.shape
    np.testing.assert_array_equal(scene.cube[2:9, 3:11], crop[2:9, 3:11])
    np.testing.assert_array_equal(np.asarray(scene.cube), crop)
    mask = np.zeros(crop.shape[:2], dtype=bool)
    mask[::3, ::2] = True
    np.testing.assert_array_equal(scene.cube[mask], crop[mask])


def test_npy_is_memory_mapped(tmp_path, crop):
    np.save(tmp_path / "cube.npy", np.asfortranarray(crop.astype(">f4")))
    cube = hsi.load_scene(tmp_path / "cube.npy").cube
    assert isinstance(cube, MappedCube) and isinstance(cube.raw, np.memmap)
    np.testing.assert_array_equal(np.asarray(cube), crop)


def test_bbl_drops_bad_bands_and_wavelengths(tmp_path, crop, indian_pines):
    bad = [0, 5, 6, 199]
    flags = ", ".join("0" if b in bad else "1" for b in range(200))
    waves = ", ".join(f"{w:.2f}" for w in indian_pines.wavelengths)
    hdr = write_envi(tmp_path / "cube.hdr", crop, "bil", "<i2",
                     extra=f"bbl = {{{flags}}}\nwavelength = {{{waves}}}\n")
    scene = hsi.load_scene(hdr)
    keep = [b for b in range(200) if b not in bad]
    assert scene.bands == 196 and scene.cube.dropped_bands == bad
    np.testing.assert_array_equal(np.asarray(scene.cube), crop[:, :, keep])
    np.testing.assert_array_equal(scene.cube[1:4, 2:5, 7], crop[1:4, 2:5, keep[7]])
    np.testing.assert_allclose(scene.wavelengths, indian_pines.wavelengths[keep], atol=0.01)


def test_ignore_value_pixels_are_never_labelled(tmp_path, crop, indian_pines):
    cube = crop.copy()
    cube[0:3, 0:4] = -9999                      # a no-data corner
    cube[5, 5, :10] = -9999                     # equal in some bands only: still data
    hdr = write_envi(tmp_path / "cube.hdr", cube, "bsq", ">i2", extra="data ignore value = -9999\n")
    labels = np.where(indian_pines.labels[40:53, 60:77] >= 0, indian_pines.labels[40:53, 60:77] + 1, 0)
    lost = int((labels[0:3, 0:4] > 0).sum())
    assert lost > 0 and labels[5, 5] > 0
    np.save(tmp_path / "gt.npy", labels.astype(np.uint8))
    scene = hsi.load_scene(hdr, tmp_path / "gt.npy")
    nodata = scene.cube.nodata()
    assert nodata.sum() == 12 and nodata[0:3, 0:4].all()
    assert (scene.labels[0:3, 0:4] == -1).all() and scene.labels[5, 5] >= 0
    assert (scene.labels >= 0).sum() == (labels > 0).sum() - lost


def test_float_nan_outside_nodata_is_refused(tmp_path, crop):
    cube = crop.astype(np.float32)
    cube[2, 3, 4] = np.nan
    cube[0, 0] = np.nan                          # a NaN no-data pixel is fine
    hdr = write_envi(tmp_path / "cube.hdr", cube, "bip", "<f4", extra="data ignore value = NaN\n")
    scene = hsi.load_scene(hdr)
    assert scene.cube[0:1, 0:2].tolist()[0][0] == [0.0] * 200
    with pytest.raises(hsi.DataError, match="1 NaN or Inf values outside no-data"):
        scene.cube[0:5]


def test_pca_from_the_mapped_cube_equals_the_in_memory_fit(tmp_path, crop):
    scene = hsi.load_scene(write_envi(tmp_path / "cube.hdr", crop, "bsq", "<i2"))
    mask = np.zeros(crop.shape[:2], dtype=bool)
    mask[1::2, ::3] = True
    for fit_mask in (mask, None):
        mapped = fit_pca(scene.cube, 5, mask=fit_mask, chunk_pixels=40)
        memory = fit_pca(crop, 5, mask=fit_mask)
        np.testing.assert_allclose(mapped.components, memory.components, atol=1e-9)
        assert mapped.fit_pixels == (mask.sum() if fit_mask is not None else crop.shape[0] * crop.shape[1])
        np.testing.assert_allclose(mapped.transform(scene.cube, chunk_pixels=30), memory.transform(crop),
                                   rtol=1e-6, atol=1e-3)


def test_truncated_envi_image_is_refused(tmp_path, crop):
    hdr = write_envi(tmp_path / "cube.hdr", crop, "bsq", "<i2", offset=10)
    img = hdr.with_suffix(".img")
    img.write_bytes(img.read_bytes()[:-2])
    with pytest.raises(hsi.DataError, match="truncated ENVI image"):
        hsi.load_scene(hdr)


def test_image_larger_than_its_header_is_refused(tmp_path, crop):
    """A BIP cube of 200 bands whose header says 100 was read misaligned (every pixel a mix of two); the size must
    be exactly offset + lines x samples x bands x itemsize, and the error names both sizes."""
    hdr = write_envi(tmp_path / "cube.hdr", crop, "bip", "<i2", offset=5)
    hdr.write_text(hdr.read_text().replace("bands = 200", "bands = 100"))
    needed = 5 + 13 * 17 * 100 * 2
    with pytest.raises(hsi.DataError, match=f"larger than its header says: {5 + crop.size * 2} bytes, "
                                            f"expected exactly {needed}"):
        hsi.load_scene(hdr)


@pytest.mark.parametrize("order", ["2", "-1", "255"])
def test_byte_order_other_than_0_or_1_is_refused(tmp_path, crop, order):
    hdr = write_envi(tmp_path / "cube.hdr", crop, "bsq", "<i2")
    hdr.write_text(hdr.read_text().replace("byte order = 0", f"byte order = {order}"))
    with pytest.raises(hsi.DataError, match=f"byte order {order} is not supported"):
        hsi.load_scene(hdr)


@pytest.mark.parametrize("key, value", [("lines", 13), ("samples", 17), ("header offset", 0)])
def test_negative_sizes_are_one_data_error(tmp_path, crop, key, value):
    """Negative lines or samples were an OverflowError or ValueError from numpy; a negative offset too."""
    hdr = write_envi(tmp_path / "cube.hdr", crop, "bil", "<i2")
    hdr.write_text(hdr.read_text().replace(f"{key} = {value}", f"{key} = -{value or 4}"))
    with pytest.raises(hsi.DataError, match=f"ENVI header says {key} = -{value or 4}; expected a whole number"):
        hsi.load_scene(hdr)


def _resident_kb(path):
    """Resident kB of this process's mappings of ``path`` (Linux /proc/self/smaps)."""
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        if line[0] in "0123456789abcdef" and "-" in line.split()[0]:
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_passes_over_a_mapped_cube_leave_none_of_it_resident(tmp_path, crop):
    """Training on a 2.7 GB line kept the whole file resident (3.4 GB peak RSS): the checksum, the streamed PCA
    fit and the reduction read it chunk by chunk and release the pages of each chunk."""
    scene = hsi.load_scene(write_envi(tmp_path / "cube.hdr", crop, "bil", "<i2"))
    image = (tmp_path / "cube.img").resolve()
    np.asarray(scene.cube[:4])
    assert _resident_kb(image) > 0              # what a read leaves behind, without a release
    scene.cube.release()
    arrays_sha256(scene)
    assert _resident_kb(image) == 0
    reducer = fit_pca(scene.cube, 5, chunk_pixels=40)
    assert _resident_kb(image) == 0
    fit_pca(scene.cube, 5, mask=np.arange(crop.shape[0] * crop.shape[1]).reshape(crop.shape[:2]) % 3 == 0)
    assert _resident_kb(image) == 0
    reducer.transform(scene.cube, chunk_pixels=30)
    assert _resident_kb(image) == 0
