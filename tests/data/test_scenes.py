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
