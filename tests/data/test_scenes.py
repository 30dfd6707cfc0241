import numpy as np
import pytest

import hsi

IP_COUNTS = [46, 1428, 830, 237, 483, 730, 28, 478, 20, 972, 2455, 593, 205, 1265, 386, 93]
SA_COUNTS = [391, 1343, 616, 1525, 674, 799]


def test_indian_pines_offline_from_tensorly(indian_pines, monkeypatch, tmp_path):
    assert indian_pines.source.startswith("tensorly")
    assert indian_pines.cube.shape == (145, 145, 200) and indian_pines.cube.dtype == np.float32
    assert indian_pines.class_counts().tolist() == IP_COUNTS
    assert indian_pines.labels.min() == -1 and indian_pines.labels.max() == 15
    assert indian_pines.class_names[0] == "Alfalfa" and indian_pines.class_names[-1] == "Stone-Steel-Towers"
    assert indian_pines.palette.shape == (16, 3) and indian_pines.palette.dtype == np.uint8
    assert len(indian_pines.wavelengths) == 200


def test_indian_pines_mat_files_identical_to_tensorly(indian_pines, shared_data):
    folder = shared_data / "indian_pines"
    scene = hsi.load_scene(folder / "Indian_pines_corrected.mat", folder / "Indian_pines_gt.mat")
    np.testing.assert_array_equal(scene.cube, indian_pines.cube)
    np.testing.assert_array_equal(scene.labels, indian_pines.labels)
    assert scene.class_names == indian_pines.class_names and scene.name == "indian_pines"
    by_dir = hsi.load_scene("indian_pines", data_dir=shared_data)
    assert by_dir.source.endswith("Indian_pines_corrected.mat")
    np.testing.assert_array_equal(by_dir.cube, indian_pines.cube)


def test_salinas_a_by_name_and_by_path(salinas_a, shared_data):
    assert salinas_a.cube.shape == (83, 86, 204)
    assert salinas_a.class_counts().tolist() == SA_COUNTS
    assert salinas_a.label_ids.tolist() == [1, 10, 11, 12, 13, 14]
    assert salinas_a.class_names == ["Brocoli_green_weeds_1", "Corn_senesced_green_weeds", "Lettuce_romaine_4wk",
                                     "Lettuce_romaine_5wk", "Lettuce_romaine_6wk", "Lettuce_romaine_7wk"]
    folder = shared_data / "salinas_a"
    by_path = hsi.load_scene(folder / "SalinasA_corrected.mat", folder / "SalinasA_gt.mat")
    np.testing.assert_array_equal(by_path.cube, salinas_a.cube)
    np.testing.assert_array_equal(by_path.labels, salinas_a.labels)
    assert by_path.class_names == salinas_a.class_names


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
