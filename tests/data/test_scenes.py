import numpy as np
import pytest

import hsi

IP_COUNTS = [46, 1428, 830, 237, 483, 730, 28, 478, 20, 972, 2455, 593, 205, 1265, 386, 93]


def test_indian_pines_offline_from_tensorly(indian_pines, monkeypatch, tmp_path):
    assert indian_pines.source.startswith("tensorly")
    assert indian_pines.cube.shape == (145, 145, 200) and indian_pines.cube.dtype == np.float32
    assert indian_pines.class_counts().tolist() == IP_COUNTS
    assert indian_pines.labels.min() == -1 and indian_pines.labels.max() == 15
    assert indian_pines.class_names[0] == "Alfalfa" and indian_pines.class_names[-1] == "Stone-Steel-Towers"
    assert indian_pines.palette.shape == (16, 3) and indian_pines.palette.dtype == np.uint8
    assert len(indian_pines.wavelengths) == 200


def test_indian_pines_mat_files_identical_to_tensorly(indian_pines, ip_data_dir):
    """The registry's .mat files (written here from the tensorly copy) load by path and by data folder."""
    scene = hsi.load_scene(ip_data_dir / "Indian_pines_corrected.mat", ip_data_dir / "Indian_pines_gt.mat")
    np.testing.assert_array_equal(scene.cube, indian_pines.cube)
    np.testing.assert_array_equal(scene.labels, indian_pines.labels)
    assert scene.class_names == indian_pines.class_names and scene.name == "indian_pines"
    by_dir = hsi.load_scene("indian_pines", data_dir=ip_data_dir)
    assert by_dir.source.endswith("Indian_pines_corrected.mat")
    np.testing.assert_array_equal(by_dir.cube, indian_pines.cube)
    np.testing.assert_array_equal(by_dir.label_ids, indian_pines.label_ids)


def test_sub_scene_keeps_its_own_label_ids(field, indian_pines):
    """A field of Indian Pines from plain cube/gt files: classes 0..K-1 map back to the file's ids 2, 8, 10, 11, 14."""
    scene = field.scene
    assert scene.cube.shape == (40, 48, 200) and scene.name == "cube"
    assert scene.label_ids.tolist() == [2, 8, 10, 11, 14]
    assert scene.class_names == [f"class {i}" for i in (2, 8, 10, 11, 14)]
    parent = indian_pines.labels[16:56, 80:128]
    np.testing.assert_array_equal(scene.label_ids[scene.labels[scene.labels >= 0]],
                                  indian_pines.label_ids[parent[parent >= 0]])
    np.testing.assert_array_equal(scene.labels < 0, parent < 0)
    assert scene.class_counts().tolist() == [int((indian_pines.label_ids[parent[parent >= 0]] == i).sum())
                                             for i in (2, 8, 10, 11, 14)]
    np.testing.assert_array_equal(scene.palette, indian_pines.palette[[1, 7, 9, 10, 13]])   # the parent's colours


def test_unknown_name_lists_known_scenes():
    with pytest.raises(hsi.ConfigError, match="indian_pines.*salinas_a"):
        hsi.load_scene("indian_pine")


def test_missing_scene_without_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HSI_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("HSI_DATA_DIR", raising=False)
    with pytest.raises(hsi.DataError, match="PaviaU.mat.*download=False|download=False"):
        hsi.load_scene("pavia_u", data_dir=tmp_path, download=False)


def test_list_scenes():
    assert hsi.list_scenes() == ["indian_pines", "salinas", "salinas_a", "pavia_u", "pavia_c", "ksc", "botswana"]


def _field_with_big_id(folder, indian_pines, big):
    """A 40 x 40 crop of Indian Pines whose ground truth has ids 2 and 11 and a 5 x 5 block of id ``big``."""
    import scipy.io

    gt = np.where(indian_pines.labels[:40, :40] >= 0, 2, 0)
    gt[20:] = np.where(gt[20:] > 0, 11, 0)
    gt[:5, :5] = big
    scipy.io.savemat(folder / "cube.mat", {"cube": indian_pines.cube[:40, :40]})
    scipy.io.savemat(folder / "gt.mat", {"gt": gt.astype(np.int64)})
    return folder / "cube.mat", folder / "gt.mat", gt


def test_label_lookup_does_not_grow_with_the_largest_id(tmp_path, indian_pines):
    """An id of 3e8 in a 40 x 40 map made a 2.4 GB lookup table; now the memory is that of the map."""
    import tracemalloc

    cube, gt_path, gt = _field_with_big_id(tmp_path, indian_pines, 300_000_000)
    tracemalloc.start()
    try:
        scene = hsi.load_scene(cube, gt_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20
    assert scene.label_ids.tolist() == [2, 11, 300_000_000]
    np.testing.assert_array_equal(scene.labels, np.searchsorted([2, 11, 300_000_000], gt) * (gt > 0) - (gt == 0))


def test_label_id_beyond_int32_is_one_data_error(tmp_path, indian_pines):
    """2**40 was a MemoryError traceback (an 8 TiB lookup table)."""
    cube, gt_path, _ = _field_with_big_id(tmp_path, indian_pines, 2**40)
    with pytest.raises(hsi.DataError, match=r"gt.mat: label ids \[1099511627776\] are too large; expected ids up "
                                            r"to 2147483647"):
        hsi.load_scene(cube, gt_path)


def test_class_indices_finds_ids_in_any_order():
    from hsi.data.scenes import class_indices

    ids = np.array([[0, 7, 3], [2**31 - 1, 5, 3]])
    np.testing.assert_array_equal(class_indices(ids, [3, 2**31 - 1, 7]), [[-1, 2, 0], [1, -1, 0]])
    np.testing.assert_array_equal(class_indices(ids, []), np.full((2, 3), -1))
