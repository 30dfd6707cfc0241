"""What users read: classes numbered by the ground truth file's ids, confusion cells that never read 0 for an error,
palettes whose colours are distinct (CIELAB), the masked map, the train options' help, the offline download error."""
import re
import urllib.request

import numpy as np
import pytest

from hsi.cli import build_parser
from hsi.data.registry import PALETTES, SCENES, palette_for
from hsi.data.scenes import fetch
from hsi.errors import ConfigError, DataError
from hsi.metrics import evaluate_predictions, format_report, format_summary, summarize_runs
from hsi.viz import class_map_figure, confusion_matrix_figure, label_map_rgb

SALINAS_A_IDS = [1, 10, 11, 12, 13, 14]
NAMES = [SCENES["salinas_a"].classes[i] for i in SALINAS_A_IDS]


def srgb_to_lab(rgb):
    """sRGB (0..255) -> CIELAB, D65 white (IEC 61966-2-1 linearisation, then CIE 1976 L*a*b*)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    to_xyz = np.array([[0.4124564, 0.3575761, 0.1804375],
                       [0.2126729, 0.7151522, 0.0721750],
                       [0.0193339, 0.1191920, 0.9503041]])
    xyz = linear @ to_xyz.T / np.array([0.95047, 1.0, 1.08883])
    delta = 6 / 29
    f = np.where(xyz > delta ** 3, np.cbrt(xyz), xyz / (3 * delta ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


@pytest.mark.parametrize("name", list(SCENES))
def test_every_registry_scene_has_colours_at_least_20_delta_e_apart_and_from_black(name):
    ids = sorted(SCENES[name].classes)
    lab = srgb_to_lab(palette_for(ids))
    distance = np.linalg.norm(lab[:, None] - lab[None], axis=-1)           # CIE76 delta E
    assert distance[~np.eye(len(ids), dtype=bool)].min() >= 20
    assert np.linalg.norm(lab - srgb_to_lab([0, 0, 0]), axis=-1).min() >= 20


def test_published_colours_stay_available():
    indian_pines = srgb_to_lab(palette_for(range(1, 17), "published"))
    corn_notill, woods = indian_pines[1], indian_pines[13]
    assert np.linalg.norm(corn_notill - woods) < 20                        # the pair the issue could not tell apart
    assert palette_for([2], "published").tolist() == [PALETTES["published"][1].tolist()]
    with pytest.raises(ConfigError, match="unknown palette"):
        palette_for([1], "rainbow")


def sample_metrics():
    labels = np.repeat(np.arange(6), 20)
    predictions = labels.copy()
    predictions[:3] = 4
    return evaluate_predictions(labels, predictions, NAMES, label_ids=SALINAS_A_IDS)


def test_report_and_summary_number_classes_by_the_files_ids():
    metrics = sample_metrics()
    lines = format_report(metrics).splitlines()
    rows = {line.split()[0]: line for line in lines if any(name in line for name in NAMES)}
    assert list(rows) == [str(i) for i in SALINAS_A_IDS]
    start = lines.index("Confusion matrix (rows: true class, columns: predicted class)")
    assert lines[start + 1].split() == [str(i) for i in SALINAS_A_IDS]
    assert [line.split()[0] for line in lines[start + 2:start + 8]] == [str(i) for i in SALINAS_A_IDS]
    summary = format_summary(summarize_runs([metrics, metrics]))
    assert f"| 14 | {NAMES[-1]} |" in summary and f"| 10 | {NAMES[1]} |" in summary


def test_confusion_cells_show_counts_so_a_few_errors_never_read_as_zero():
    cm = np.diag([996, 500, 40, 30, 20, 10])
    cm[0, 0], cm[0, 4] = 996, 4                                             # 4 of 1,000 wrong
    fig = confusion_matrix_figure(cm, NAMES, label_ids=SALINAS_A_IDS)
    ax = fig.axes[0]
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert cells[(0, 4)] == "4" and cells[(0, 0)] == "996"
    assert not any(re.fullmatch(r"0?\.0+", text) for text in cells.values())
    assert [t.get_text() for t in ax.get_yticklabels()][1] == f"(10) {NAMES[1]}"


def test_map_figure_shows_the_whole_map_the_masked_map_and_the_title(indian_pines):
    rows = slice(0, 40)
    gt = indian_pines.labels[rows]
    predicted = np.where(gt >= 0, gt, 0)
    fig = class_map_figure(predicted, indian_pines.class_names, indian_pines.palette, ground_truth=gt,
                           mask_unlabelled="both", title="indian_pines / hybridsn: test OA 99.00 %",
                           label_ids=indian_pines.label_ids)
    panels = [ax for ax in fig.axes if ax.images]
    n = int((gt >= 0).sum())
    assert [ax.get_title() for ax in panels] == ["predicted classes", "predicted classes (labelled pixels)\n"
                                                 f"OA 100.00 % on {n:,} labelled pixels", "ground truth"]
    masked = panels[1].images[0].get_array()
    np.testing.assert_array_equal(masked, label_map_rgb(np.where(gt >= 0, predicted, -1), indian_pines.palette))
    assert fig._suptitle.get_text().endswith("test OA 99.00 %")
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[0] == "1 Alfalfa" and legend[15] == "16 Stone-Steel-Towers"


def test_every_train_option_has_help_and_shows_its_default():
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    text = " ".join(train.format_help().split())
    formatter = train._get_formatter()
    for action in train._actions:
        if not action.option_strings or action.dest == "help":
            continue
        shown = " ".join(formatter._expand_help(action).split())
        assert action.help and shown in text, action.dest
        if action.default is not None and action.default is not False:
            assert f"default {action.default}" in shown, action.dest


def test_download_offline_names_both_files_and_the_folder(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as info:
        fetch("salinas", tmp_path / "salinas")
    message = str(info.value)
    assert "Salinas_corrected.mat" in message and "Salinas_gt.mat" in message
    assert str((tmp_path / "salinas").resolve()) in message
    assert not (tmp_path / "salinas").exists(), "a failed download left its folder behind"


def test_an_interrupted_download_leaves_nothing_behind(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(urllib.request, "urlopen", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fetch("salinas", tmp_path / "cache" / "salinas")
    assert not (tmp_path / "cache").exists()
