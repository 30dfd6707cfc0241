"""Reading every supported format, and one clear error per kind of bad input."""
import h5py
import numpy as np
import pytest
import scipy.io
import spectral.io.envi as envi

import hsi


@pytest.fixture(scope="module")
def crop(indian_pines):
    """A real 20x24x200 crop of Indian Pines (rows 24-43, columns 88-111), with its original label ids."""
    cube = indian_pines.cube[24:44, 88:112]
    labels = indian_pines.labels[24:44, 88:112]
    ids = np.where(labels >= 0, indian_pines.label_ids[np.maximum(labels, 0)], 0)
    assert len(np.unique(ids[ids > 0])) >= 3 and (ids == 0).any()
    return cube, ids.astype(np.uint8)


def _save_v73(path, **arrays):
    """Write arrays as MATLAB v7.3 does: HDF5 behind a 512-byte text header, arrays column-major."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, array in arrays.items():
            f[name] = array.T
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Sun Nov 22 12:00:00 2026 HDF5 schema 1.00 .")


def test_mat_v73_loads_transposed_back(tmp_path, crop):
    cube, ids = crop
    _save_v73(tmp_path / "cube.mat", data=cube)
    _save_v73(tmp_path / "gt.mat", gt=ids.astype(np.float64))
    scene = hsi.load_scene(tmp_path / "cube.mat", tmp_path / "gt.mat")
    np.testing.assert_array_equal(scene.cube, cube)
    assert scene.label_ids.tolist() == sorted(set(ids[ids > 0].tolist()))
    np.testing.assert_array_equal(scene.label_ids[scene.labels][ids > 0], ids[ids > 0])


def test_envi_pair_loads(tmp_path, crop):
    cube, ids = crop
    envi.save_image(str(tmp_path / "cube.hdr"), cube, metadata={"wavelength": list(range(400, 400 + cube.shape[2]))})
    envi.save_image(str(tmp_path / "gt.hdr"), ids[:, :, None])
    scene = hsi.load_scene(tmp_path / "cube.hdr", tmp_path / "gt.img")
    np.testing.assert_array_equal(scene.cube, cube)
    np.testing.assert_array_equal(scene.label_ids[scene.labels][ids > 0], ids[ids > 0])
    assert scene.wavelengths[0] == 400


def test_npy_loads(tmp_path, crop):
    cube, ids = crop
    np.save(tmp_path / "cube.npy", cube)
    np.save(tmp_path / "gt.npy", ids)
    scene = hsi.load_scene(tmp_path / "cube.npy", tmp_path / "gt.npy")
    np.testing.assert_array_equal(scene.cube, cube)


def _mat(path, **arrays):
    scipy.io.savemat(path, arrays)
    return path


BAD_INPUTS = {
    "missing file": (lambda d, c, g: (d / "nope.mat", None), "file not found"),
    "truncated": (lambda d, c, g: (_truncated(d, c), None), "unreadable or truncated"),
    "no 3-D array": (lambda d, c, g: (_mat(d / "x.mat", flat=c[:, :, 0]), None), "no 3-D numeric array"),
    "ambiguous": (lambda d, c, g: (_mat(d / "x.mat", a=c, b=c), None), r"several arrays.*\['a', 'b'\]"),
    "shape mismatch": (lambda d, c, g: (_mat(d / "x.mat", a=c), _mat(d / "g.mat", gt=g[:-1])),
                       "label map is 19x24 but the cube"),
    "nan": (lambda d, c, g: (_mat(d / "x.mat", a=np.where(c > np.median(c), np.nan, c)), None), "NaN or Inf"),
    "negative labels": (lambda d, c, g: (_mat(d / "x.mat", a=c), _mat(d / "g.mat", gt=g.astype(np.int16) - 3)),
                        "negative labels"),
}


def _truncated(d, cube):
    path = _mat(d / "t.mat", a=cube)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_raises_named_error(tmp_path, crop, case):
    make, message = BAD_INPUTS[case]
    cube, gt = make(tmp_path, *crop)
    with pytest.raises(hsi.DataError, match=message) as info:
        hsi.load_scene(cube, gt)
    assert str(cube.name) in str(info.value) or (gt is not None and gt.name in str(info.value))
