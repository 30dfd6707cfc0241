"""Figures and map export on real data (Indian Pines and a field of it): PNG with legend, .npy label ids, ENVI."""
import math
from types import SimpleNamespace

import matplotlib.image
import numpy as np
import pytest
from scipy import ndimage

from hsi.errors import ConfigError
from hsi.export import export_map
from hsi.metrics import evaluate_predictions
from hsi.outputs import write_rgb_png
from hsi.viz import (
    class_map_figure,
    confusion_matrix_figure,
    curves_figure,
    false_color,
    false_color_figure,
    label_map_rgb,
    rgb_bands,
    save_figure,
)


def filled(scene):
    """The ground truth with every unlabelled pixel given its nearest labelled pixel's class: a full 'prediction'."""
    nearest = ndimage.distance_transform_edt(scene.labels < 0, return_distances=False, return_indices=True)
    return scene.labels[tuple(nearest)]


def stand_in(scene):
    """Real class names, label ids and palette of the scene: what export_map reads from a TrainedModel."""
    return SimpleNamespace(class_names=list(scene.class_names), label_ids=scene.label_ids.copy(),
                           palette=scene.palette.copy())


def png_colours(path):
    image = matplotlib.image.imread(path)
    rgb = np.round(image[..., :3] * 255).astype(np.int64).reshape(-1, 3)
    packed = np.unique((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2])
    return image.shape, {(int(c >> 16), int(c >> 8 & 255), int(c & 255)) for c in packed}


def leftovers(folder):
    return [p.name for p in folder.rglob("*") if ".tmp-" in p.name]


@pytest.fixture(scope="module")
def scene(field):
    """The field of Indian Pines (40 x 48, five classes with label ids 2, 8, 10, 11, 14), read from .mat files."""
    return field.scene


def test_export_png_npy_envi_on_a_field_with_sparse_ids(scene, tmp_path):
    import spectral

    label_map = filled(scene)
    assert (label_map >= 0).all() and set(np.unique(label_map)) == set(range(scene.n_classes))
    trained = stand_in(scene)
    prefix = tmp_path / "run" / "map"                      # the folder does not exist yet
    written = export_map(label_map, trained, prefix, formats=("png", "npy", "envi"),
                         ground_truth=scene.labels)
    assert written == {"png": tmp_path / "run" / "map.png", "npy": tmp_path / "run" / "map.npy",
                       "envi": tmp_path / "run" / "map.hdr"}
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"map.png", "map.npy", "map.hdr", "map.img"}
    assert leftovers(tmp_path) == []

    ids = np.load(written["npy"])
    assert np.issubdtype(ids.dtype, np.integer) and ids.shape == scene.labels.shape
    np.testing.assert_array_equal(ids, scene.label_ids[label_map])
    assert set(np.unique(ids)) == {2, 8, 10, 11, 14}

    image = spectral.open_image(str(written["envi"]))
    assert image.metadata["file type"] == "ENVI Classification"
    values = np.asarray(image.read_band(0))
    np.testing.assert_array_equal(values, label_map + 1)
    assert image.metadata["class names"] == ["Unclassified", *scene.class_names]      # "class 2": the id already
    assert int(image.metadata["classes"]) == scene.n_classes + 1
    lookup = np.array(image.metadata["class lookup"], dtype=int).reshape(-1, 3)
    np.testing.assert_array_equal(lookup, np.vstack([[0, 0, 0], scene.palette]))

    shape, colours = png_colours(written["png"])
    assert shape[0] >= 300 and shape[1] >= 2 * shape[0] * 0.8     # map and ground truth side by side + legend
    for colour in scene.palette:
        assert tuple(int(v) for v in colour) in colours
    assert (0, 0, 0) in colours                                    # unlabelled ground-truth pixels


def test_export_indian_pines_map_with_no_class_pixels(indian_pines, tmp_path):
    label_map = indian_pines.labels.copy()                       # -1 where unlabelled: "no class"
    written = export_map(label_map, stand_in(indian_pines), tmp_path / "ip", formats=["npy", "envi", "png"])
    ids = np.load(written["npy"])
    np.testing.assert_array_equal(ids == 0, label_map < 0)
    np.testing.assert_array_equal(ids[label_map >= 0], indian_pines.label_ids[label_map[label_map >= 0]])
    import spectral

    values = np.asarray(spectral.open_image(str(written["envi"])).read_band(0))
    np.testing.assert_array_equal(values, label_map + 1)
    _, colours = png_colours(written["png"])
    assert {tuple(int(v) for v in c) for c in indian_pines.palette} <= colours


def test_envi_map_of_300_classes_with_commas_and_braces_in_their_names(indian_pines, tmp_path):
    """More than 255 classes take 16-bit values; a name's commas and braces would break the header's lists."""
    import spectral

    k = 300
    names = [f"{name}, plot {{{i}}}" for i, name in enumerate(indian_pines.class_names[i % 16] for i in range(k))]
    rng = np.random.default_rng(0)
    label_map = np.where(indian_pines.labels >= 0, rng.integers(0, k, indian_pines.labels.shape), -1)
    trained = SimpleNamespace(class_names=names, label_ids=np.arange(1, k + 1),
                              palette=rng.integers(0, 256, (k, 3), dtype=np.uint8))
    written = export_map(label_map, trained, tmp_path / "many", formats=["envi"])
    image = spectral.open_image(str(written["envi"]))
    values = np.asarray(image.read_band(0))
    assert values.dtype == np.uint16
    np.testing.assert_array_equal(values, label_map + 1)
    expected = [f"{i} {n}".replace(",", ";").replace("{", "(").replace("}", ")") for i, n in enumerate(names, 1)]
    assert image.metadata["class names"] == ["Unclassified", *expected]
    lookup = np.array(image.metadata["class lookup"], dtype=int).reshape(-1, 3)
    np.testing.assert_array_equal(lookup, np.vstack([[0, 0, 0], trained.palette]))


@pytest.mark.parametrize("formats, message", [
    (("png", "tiff"), "unknown map format(s) ['tiff']; expected one or more of png, npy, envi, tif, cog, gpkg"),
    ("png, TIFF,gif",
     "unknown map format(s) ['tiff', 'gif']; expected one or more of png, npy, envi, tif, cog, gpkg"),
    ("", "no map format given; expected one or more of png, npy, envi, tif, cog, gpkg"),
    (" , ", "no map format given; expected one or more of png, npy, envi, tif, cog, gpkg"),
])
def test_bad_formats_raise_before_writing(scene, tmp_path, formats, message):
    with pytest.raises(ConfigError) as info:
        export_map(filled(scene), stand_in(scene), tmp_path / "out" / "map", formats=formats)
    assert str(info.value) == message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("change, message", [
    (lambda m, gt, k: (m[:10], gt), "ground_truth"),
    (lambda m, gt, k: (m + k, gt), "outside"),
    (lambda m, gt, k: (m.astype(float), gt), "integer"),
])
def test_bad_maps_raise_before_writing(scene, tmp_path, change, message):
    label_map, gt = change(filled(scene), scene.labels, scene.n_classes)
    with pytest.raises(ConfigError, match=message):
        export_map(label_map, stand_in(scene), tmp_path / "map", formats=("npy", "png"), ground_truth=gt)
    assert list(tmp_path.iterdir()) == []


def test_envi_failure_leaves_no_temporary_files(scene, tmp_path):
    (tmp_path / "map.img").mkdir()                                # the image cannot be renamed onto a folder
    with pytest.raises(OSError):
        export_map(filled(scene), stand_in(scene), tmp_path / "map", formats=("envi",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.img"] and leftovers(tmp_path) == []


def test_label_map_rgb_uses_palette_and_black_for_no_class(scene):
    label_map = scene.labels
    rgb = label_map_rgb(label_map, scene.palette)
    assert rgb.shape == (*label_map.shape, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[label_map >= 0], scene.palette[label_map[label_map >= 0]])
    assert (label_map < 0).any() and (rgb[label_map < 0] == 0).all()
    with pytest.raises(ConfigError, match="outside"):
        label_map_rgb(label_map + scene.n_classes + 1, scene.palette)


def test_class_map_figure_has_legend_and_masks(scene, tmp_path):
    label_map = filled(scene)
    fig = class_map_figure(label_map, scene.class_names, scene.palette, ground_truth=scene.labels,
                           mask_unlabelled=True, title="a field of Indian Pines")
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [*scene.class_names, "unlabelled"]
    shown = fig.axes[0].images[0].get_array()
    np.testing.assert_array_equal(np.asarray(shown)[scene.labels < 0], 0)
    path = save_figure(fig, tmp_path / "masked.png")
    _, colours = png_colours(path)
    assert {tuple(int(v) for v in c) for c in scene.palette} <= colours
    with pytest.raises(ConfigError, match="ground_truth"):
        class_map_figure(label_map, scene.class_names, scene.palette, mask_unlabelled=True)


def test_false_color_indian_pines_picks_visible_bands(indian_pines):
    wl = indian_pines.wavelengths
    assert wl is not None and len(wl) == 200
    expected = tuple(int(np.argmin(np.abs(wl - nm))) for nm in (650, 550, 470))
    assert rgb_bands(200, wl) == expected
    assert all(abs(wl[b] - nm) < 6 for b, nm in zip(expected, (650, 550, 470)))
    assert rgb_bands(200, wl / 1000) == expected                  # micrometres are recognised
    image = false_color(indian_pines.cube, wl)
    assert image.shape == (145, 145, 3) and image.min() >= 0 and image.max() <= 1
    band = indian_pines.cube[:, :, expected[0]].astype(np.float64)
    lo, hi = np.percentile(band, [2, 98])
    np.testing.assert_allclose(image[..., 0], np.clip((band - lo) / (hi - lo), 0, 1), atol=1e-6)
    assert 0.01 < (image == 1).mean() < 0.05                      # ~2 % clipped at the top of each channel


def test_false_color_without_wavelengths_and_band_override(scene):
    assert scene.wavelengths is None                              # a .mat file carries no wavelengths
    assert rgb_bands(204) == (152, 102, 51) and rgb_bands(200) == (149, 100, 50)
    image = false_color(scene.cube)
    assert image.shape == (*scene.labels.shape, 3)
    band = scene.cube[:, :, 149].astype(np.float64)
    lo, hi = np.percentile(band, [2, 98])
    np.testing.assert_allclose(image[..., 0], np.clip((band - lo) / (hi - lo), 0, 1), atol=1e-6)
    image = false_color(scene.cube, bands=(10, 20, 30))
    band = scene.cube[:, :, 20].astype(np.float64)
    lo, hi = np.percentile(band, [2, 98])
    np.testing.assert_allclose(image[..., 1], np.clip((band - lo) / (hi - lo), 0, 1), atol=1e-6)
    for bad in ((0, 1, 999), (0, 1, True), (0, 1, 2.0)):
        with pytest.raises(ConfigError, match="bands must be three band indices"):
            false_color(scene.cube, bands=bad)


def test_write_rgb_png_round_trips(indian_pines, tmp_path):
    image = false_color(indian_pines.cube, indian_pines.wavelengths)
    path = write_rgb_png(image, tmp_path / "fc" / "false.png")
    back = matplotlib.image.imread(path)
    assert back.shape[:2] == (145, 145)
    np.testing.assert_array_equal(np.round(back[..., :3] * 255), np.round(image * 255))
    assert leftovers(tmp_path) == []
    with pytest.raises(ConfigError, match="rows, cols, 3"):
        write_rgb_png(image[..., 0], tmp_path / "bad.png")


def test_save_figure_is_atomic(indian_pines, tmp_path):
    fig = false_color_figure(indian_pines.cube, indian_pines.wavelengths, title="Indian Pines")
    path = save_figure(fig, tmp_path / "figs" / "false.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert leftovers(tmp_path) == [] and [p.name for p in path.parent.iterdir()] == ["false.png"]
    (tmp_path / "taken.png").mkdir()                              # rename onto a folder fails
    with pytest.raises(OSError):
        save_figure(false_color_figure(indian_pines.cube), tmp_path / "taken.png")
    assert leftovers(tmp_path) == []
    with pytest.raises(ConfigError, match="suffix"):
        save_figure(false_color_figure(indian_pines.cube), tmp_path / "figure.xyz")
    assert not (tmp_path / "figure.xyz").exists()


def test_confusion_matrix_figure_labels_and_counts(scene, tmp_path):
    labels = scene.labels[scene.labels >= 0]
    predictions = filled(scene)[scene.labels >= 0]
    predictions[::7] = (predictions[::7] + 1) % scene.n_classes
    cm = np.array(evaluate_predictions(labels, predictions, scene.class_names)["confusion_matrix"])
    fig = confusion_matrix_figure(cm, scene.class_names, normalize=False)
    ax = fig.axes[0]
    assert all(any(name in t.get_text() for t in ax.get_yticklabels()) for name in scene.class_names)
    texts = {t.get_text() for t in ax.texts}
    assert str(cm[0, 0]) in texts and len(ax.texts) == np.count_nonzero(cm)
    normalised = confusion_matrix_figure(cm, scene.class_names)
    row = cm[1] / cm[1].sum()
    assert np.allclose(np.asarray(normalised.axes[0].images[0].get_array())[1], row)
    save_figure(normalised, tmp_path / "confusion.png")
    with pytest.raises(ConfigError, match="shape"):
        confusion_matrix_figure(cm[:-1], scene.class_names)


def test_curves_figure_with_and_without_validation(tmp_path):
    history = [{"epoch": e, "train_loss": 1 / e, "train_oa": 1 - 0.5 / e, "val_loss": 1.2 / e,
                "val_oa": [0.5, 0.8, 0.7][e - 1], "lr": 1e-3, "seconds": 0.5} for e in (1, 2, 3)]
    fig = curves_figure(history)
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in acc_ax.lines][:2] == ["train", "validation"]
    best = [line for line in acc_ax.lines if line.get_label().startswith("best")]
    assert best and best[0].get_xdata()[0] == 2
    np.testing.assert_allclose(acc_ax.lines[1].get_ydata(), [50, 80, 70])
    save_figure(fig, tmp_path / "curves.png")
    tied = curves_figure([{**row, "val_oa": 0.8} if row["epoch"] == 3 else row for row in history])
    best = [line for line in tied.axes[1].lines if line.get_label().startswith("best")]
    assert best[0].get_xdata()[0] == 3          # same OA as epoch 2, lower validation loss: as best.pt
    no_val = curves_figure([{**row, "val_loss": math.nan, "val_oa": math.nan} for row in history])
    assert [line.get_label() for line in no_val.axes[1].lines] == ["train"]
    with pytest.raises(ConfigError, match="history"):
        curves_figure([])
