"""Augmentations by name: each transform's property on real Indian Pines windows and scene crops, determinism,
the registry, ``--augment flip`` against the old ``augment=True``, and exact resume of an augmented run."""
import hashlib
import json
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
import torch

import hsi
from hsi.config import RunConfig
from hsi.data import augment
from hsi.data.augment import Augmentation, Noise, list_augmentations, make_augmentation, register_augmentation
from hsi.data.patches import PatchDataset, pad_cube
from hsi.data.scene_samples import SceneSamples
from hsi.distributed import ShardedBatches
from hsi.pipeline import Interrupted, resume, train
from hsi.runfolder import read_config

ALL = ("flip", "brightness", "noise", "spectral_shift", "spectral_smooth", "mix")
# sha256 of the batches and scene draws of the code before augmentations had names (the branch's base commit
# 637d0ce, PatchDataset(augment=True) with ShardedBatches(orientations=8), SceneSamples(augment=True)), computed
# there by old_batches_digest and old_scene_digest below with the old arguments
OLD_PATCH_DIGEST = "ba57958356e24a76c3e79eaadea560e1562eaf10b6339c5602f753aa4f6573a3"
OLD_SCENE_DIGEST = "7202c90ee647ccc51f3816ef6da539afe376e77ccc46634af97eb6565a7ba129"
NARROW_FCN = {"widths": [8, 8, 8], "context_width": 16}


@pytest.fixture(scope="module")
def crop(indian_pines):
    """A 20 x 20 crop of Indian Pines, its first 12 raw bands (float32, exact), and its label map."""
    cube = np.ascontiguousarray(indian_pines.cube[30:50, 40:60, :12], dtype=np.float32)
    return cube, indian_pines.labels[30:50, 40:60]


def dataset(crop, names=None, patch=5):
    cube, labels = crop
    rows, cols = np.nonzero(labels >= 0)
    return PatchDataset(pad_cube(cube, patch), np.stack([rows, cols], 1), labels[rows, cols], patch,
                        spectral_channel=False, augmentation=make_augmentation(names))


def one(name, **params):
    """An augmentation of the one transform ``name`` with other parameters."""
    return Augmentation([type(make_augmentation(name).transforms[0])(**params)])


def apply(ds, transform, indices, params):
    """The windows of ``indices`` through ``transform`` with the given per-item ``params`` rows."""
    return transform.apply(ds.windows_at(indices), [list(np.atleast_1d(p)) for p in params], ds)


def test_flip_turns_each_window_keeping_its_centre_and_values(crop):
    ds = dataset(crop, "flip")
    indices = list(range(8))
    plain = ds.windows_at(indices)
    turned = apply(ds, ds.augmentation, indices, range(8))
    torch.testing.assert_close(turned[:, :, 2, 2], plain[:, :, 2, 2], rtol=0, atol=0)
    for a, b in zip(plain, turned):         # the same values per band, moved
        torch.testing.assert_close(a.flatten(1).sort(1).values, b.flatten(1).sort(1).values, rtol=0, atol=0)
    assert len({w.numpy().tobytes() for w in turned - plain}) == 8


def test_flip_moves_a_scene_draw_and_its_labels_together(crop):
    cube, labels = crop
    tagged = np.concatenate([cube, labels[..., None].astype(np.float32)], -1)     # the label as a last band
    samples = SceneSamples(tagged, labels, crop=9, augmentation=make_augmentation("flip"))
    generator = torch.Generator().manual_seed(0)
    draws = [samples.draw(generator) for _ in range(12)]
    for x, y in draws:
        torch.testing.assert_close(x[0, -1], y[0].float(), rtol=0, atol=0)
    assert len({y.numpy().tobytes() for _, y in draws}) > 6


def test_brightness_scales_each_window_by_its_drawn_gain(crop):
    ds = dataset(crop, "brightness")
    indices = list(range(16))
    gains = torch.tensor(ds.draw(torch.tensor(indices), torch.Generator().manual_seed(1)))[:, 0]
    assert ((gains >= 0.8) & (gains <= 1.2)).all() and gains.std() > 0.05
    x = apply(ds, ds.augmentation, indices, gains.tolist())
    torch.testing.assert_close(x, ds.windows_at(indices) * gains.float().view(-1, 1, 1, 1))
    cube, labels = crop
    samples = SceneSamples(cube, labels, augmentation=make_augmentation("brightness"))
    x, y = samples.draw(torch.Generator().manual_seed(2))
    ratio = x[0] / samples.x                                  # one gain per pixel, the same in every band
    torch.testing.assert_close(ratio, ratio[:1].expand_as(ratio))
    assert ratio.min() >= 0.8 - 1e-6 and ratio.max() <= 1.2 + 1e-6 and ratio.std() > 0.05
    assert torch.equal(y[0], samples.y)


def test_noise_has_the_given_std_relative_to_each_band(crop):
    ds = dataset(crop, None)
    band_std = torch.from_numpy(crop[0][crop[1] >= 0].std(0))
    torch.testing.assert_close(ds.band_std, band_std)
    noise = Augmentation([Noise(std=0.1)])
    indices = torch.arange(len(ds))
    x = apply(ds, noise, indices, [row[0] for row in noise.draw(None, indices, torch.Generator().manual_seed(3))])
    residual = (x - ds.windows_at(indices)).transpose(0, 1).flatten(1)            # (bands, values)
    torch.testing.assert_close(residual.std(1) / band_std, torch.full((12,), 0.1), rtol=0.03, atol=0)
    assert residual.mean(1).abs().max() / band_std.min() < 0.01
    again = apply(ds, noise, indices[:3], [11, 11, 12]) - ds.windows_at(indices[:3])    # a window's noise: its seed's
    torch.testing.assert_close(again[0], again[1], rtol=0, atol=1e-3)      # up to rounding at values near 5,000
    assert (again[0] - again[2]).abs().mean() > 0.05 * band_std.min()


@pytest.mark.parametrize("offset", [1, -1, 2])
def test_spectral_shift_moves_band_k_to_k_plus_the_offset(crop, offset):
    ds = dataset(crop, None)
    shift = one("spectral_shift", max_shift=2)
    plain = ds.windows_at([4])
    x = apply(ds, shift, [4], [offset])
    for k in range(12):
        torch.testing.assert_close(x[0, k], plain[0, min(max(k - offset, 0), 11)], rtol=0, atol=0)
    drawn = torch.tensor(shift.draw(None, torch.arange(400), torch.Generator().manual_seed(0))).flatten()
    assert set(drawn.tolist()) == {-2.0, -1.0, 0.0, 1.0, 2.0}


def test_spectral_smooth_is_a_gaussian_along_the_bands(crop):
    ds = dataset(crop, "spectral_smooth")
    plain = ds.windows_at([0, 1]).numpy().astype(np.float64)
    x = apply(ds, ds.augmentation, [0, 1], [0.0, 0.7]).numpy()
    np.testing.assert_array_equal(x[0], plain[0])                     # width 0: unchanged
    taps = np.arange(-2, 3)
    kernel = np.exp(-taps ** 2 / (2 * 0.7 ** 2))
    kernel /= kernel.sum()
    spectra = np.pad(plain[1].reshape(12, -1), ((2, 2), (0, 0)), mode="edge")
    expected = sum(kernel[j] * spectra[j:j + 12] for j in range(5)).reshape(plain[1].shape)
    np.testing.assert_allclose(x[1], expected, rtol=1e-5)


def test_mix_blends_windows_of_one_class_only(crop):
    ds = dataset(crop, "mix")
    indices = torch.arange(len(ds))
    rows = ds.draw(indices, torch.Generator().manual_seed(4))
    partners = torch.tensor([int(r[0]) for r in rows])
    weights = torch.tensor([r[1] for r in rows])
    assert (ds.labels[partners] == ds.labels).all() and (partners != indices).float().mean() > 0.95
    assert weights.min() >= 0 and weights.max() <= 0.5 and weights.std() > 0.05
    x, y = ds.__getitems__(list(zip(indices.tolist(), rows)))
    torch.testing.assert_close(y, torch.from_numpy(ds.labels))
    a, b = ds.windows_at(indices), ds.windows_at(partners)
    assert (x >= torch.minimum(a, b) - 1e-3).all() and (x <= torch.maximum(a, b) + 1e-3).all()   # convex hull
    w = weights.float().view(-1, 1, 1, 1)
    torch.testing.assert_close(x, (1 - w) * a + w * b)


def test_mix_in_a_scene_draw_mixes_labelled_pixels_of_one_class(crop):
    cube, labels = crop
    samples = SceneSamples(cube, labels, augmentation=make_augmentation("mix"))
    x, y = samples.draw(torch.Generator().manual_seed(5))
    assert torch.equal(y[0], samples.y)
    unlabelled = samples.y < 0
    torch.testing.assert_close(x[0][:, unlabelled], samples.x[:, unlabelled], rtol=0, atol=0)
    for label in torch.unique(samples.y[~unlabelled]).tolist():
        mine = samples.x[:, samples.y == label]
        mixed = x[0][:, samples.y == label]
        assert (mixed >= mine.min(1, keepdim=True).values - 1e-3).all()
        assert (mixed <= mine.max(1, keepdim=True).values + 1e-3).all()
    assert not torch.equal(x[0], samples.x)


def test_draws_come_from_the_generator_alone(crop):
    """The same generator state gives the same batch; another seed another one; the global RNG is not touched."""
    ds = dataset(crop, ",".join(ALL))
    cube, labels = crop
    samples = SceneSamples(cube, labels, crop=9, augmentation=make_augmentation(ALL))

    def batches(seed):
        generator = torch.Generator().manual_seed(seed)
        patches = [ds.__getitems__(items)[0] for items in ShardedBatches(len(ds), 64, generator, True, draw=ds.draw)]
        return torch.cat(patches), samples.draw(generator)[0]

    state = torch.get_rng_state()
    (a, scene_a), (b, scene_b), (c, scene_c) = batches(0), batches(0), batches(1)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, b) and torch.equal(scene_a, scene_b)
    assert not torch.allclose(a, c) and scene_a.shape[-2:] == scene_c.shape[-2:] and not torch.equal(scene_a, scene_c)


def test_names_parse_and_unknown_names_are_refused():
    assert set(ALL) <= set(list_augmentations())
    assert make_augmentation(" Flip, noise").names == ("flip", "noise")
    assert make_augmentation(["mix"]).names == ("mix",)
    assert make_augmentation("") is None and make_augmentation(False) is None and make_augmentation("none") is None
    assert make_augmentation(True).names == ("flip",)
    with pytest.raises(hsi.ConfigError, match=r"unknown augmentation\(s\) 'twirl'; known augmentations: brightness, "
                                              r"flip, mix, noise, spectral_shift, spectral_smooth"):
        make_augmentation("flip,twirl")
    with pytest.raises(hsi.ConfigError, match="twice"):
        make_augmentation("flip,flip")
    with pytest.raises(hsi.ConfigError, match="comma-separated list"):
        make_augmentation(3)


def test_a_registered_transform_is_known_by_name(crop):
    @register_augmentation("invert_test")
    class Invert(augment.Transform):
        def draw(self, labels, indices, generator):
            return torch.zeros(len(indices))

        def apply(self, x, params, source):
            return -x

    try:
        ds = dataset(crop, "invert_test")
        assert "invert_test" in list_augmentations()
        torch.testing.assert_close(ds[0][0], -ds.windows_at([0])[0])
        with pytest.raises(hsi.ConfigError, match=r"invert_test cannot transform scene draws \(no scene\(\) method"):
            SceneSamples(*crop, augmentation=make_augmentation("flip,invert_test"))
    finally:
        del augment.TRANSFORMS.registered["invert_test"]


def test_an_installed_package_adds_a_transform_through_its_entry_point(crop, install_distribution, monkeypatch):
    install_distribution("hsi-ep-augment", "[hsi.augmentations]\nnegate = hsi_ep_augment:Negate\n", {"hsi_ep_augment": (
        "from hsi.data.augment import Transform\n\n"
        "class Negate(Transform):\n"
        "    def draw(self, labels, indices, generator):\n"
        "        return labels * 0\n\n"
        "    def apply(self, x, params, source):\n"
        "        return -x\n")})
    try:
        augment.reload_entry_points()
        assert "negate" in list_augmentations()
        ds = dataset(crop, "flip,negate")
        assert ds.augmentation.names == ("flip", "negate")
        x, _ = ds.__getitems__([(0, [0, 0])])
        torch.testing.assert_close(x[0], -ds.windows_at([0])[0])
    finally:
        monkeypatch.undo()
        augment.reload_entry_points()
    assert "negate" not in list_augmentations()


def test_run_config_records_names_and_reads_the_old_bool(field_config):
    config = field_config(augment="flip, noise")
    config.check()
    assert config.augment == ("flip", "noise")
    for old, names in ((True, ("flip",)), (False, ())):
        config = RunConfig.from_dict({"augment": old})
        config.check()
        assert config.augment == names
    with pytest.raises(hsi.ConfigError, match="known augmentations: brightness, flip"):
        field_config(augment=["flip", "blur"]).check()


def test_a_comparison_started_when_augment_was_a_bool_is_still_the_same(tmp_path, field_config):
    """``experiment.json`` of a comparison begun before augmentations had names holds ``"augment": false``."""
    from hsi.experiments import ModelSpec, _check_out

    def experiment(base):
        return {"base": asdict(base), "models": [asdict(ModelSpec("rf"))], "seeds": [0]}

    old = experiment(field_config())
    old["base"]["augment"] = False
    (tmp_path / "experiment.json").write_text(json.dumps(old))
    _check_out(tmp_path, experiment(field_config()))
    with pytest.raises(hsi.ConfigError, match="holds another comparison"):
        _check_out(tmp_path, experiment(field_config(augment="flip")))


def test_cli_augment_option():
    from hsi.cli import _config_from_args, build_parser

    def augment(*args):
        parsed = build_parser().parse_args(["train", "--dataset", "indian_pines", *args])
        config = _config_from_args(parsed)
        config.check()
        return config.augment

    assert augment() == () and augment("--augment") == ("flip",) and augment("--augment", "--pca", "5") == ("flip",)
    assert augment("--augment", "flip,brightness,mix") == ("flip", "brightness", "mix")


def test_an_unknown_name_is_one_error_line(field, tmp_path):
    result = subprocess.run([sys.executable, "-m", "hsi", "train", "--cube", field.cube, "--gt", field.gt,
                             "--augment", "flip,twirl", "--out", tmp_path / "run"], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 2 and not (tmp_path / "run").exists()
    assert result.stderr.strip().splitlines() == [("error: unknown augmentation(s) 'twirl'; known augmentations: "
                                                   "brightness, flip, mix, noise, spectral_shift, spectral_smooth")]


def old_batches_digest(ds, draw):
    """sha256 of two epochs of batches of 64 (generator seeded 5), as the old code was run to get the digest."""
    generator, digest = torch.Generator().manual_seed(5), hashlib.sha256()
    for _ in range(2):
        for items in ShardedBatches(len(ds), 64, generator, shuffle=True, draw=draw):
            x, y = ds.__getitems__(items)
            digest.update(x.numpy().tobytes())
            digest.update(y.numpy().tobytes())
    return digest.hexdigest()


def old_scene_digest(samples):
    generator, digest = torch.Generator().manual_seed(5), hashlib.sha256()
    for _ in range(6):
        x, y = samples.draw(generator)
        digest.update(x.numpy().tobytes())
        digest.update(y.numpy().tobytes())
    return digest.hexdigest()


def test_flip_gives_bit_for_bit_what_augment_true_gave(crop):
    cube, labels = crop
    rows, cols = np.nonzero(labels >= 0)
    ds = PatchDataset(pad_cube(cube, 5), np.stack([rows, cols], 1), labels[rows, cols], 5,
                      augmentation=make_augmentation("flip"))
    assert old_batches_digest(ds, ds.draw) == OLD_PATCH_DIGEST
    assert old_scene_digest(SceneSamples(cube, labels, crop=8, augmentation=make_augmentation("flip"))) == \
        OLD_SCENE_DIGEST


def history_without_time(run_dir):
    return [line.rsplit(",", 1)[0] for line in (run_dir / "history.csv").read_text().splitlines()]


@pytest.mark.parametrize("model", [{}, {"model": "fcn8s", "model_kwargs": NARROW_FCN, "crop": 24}],
                         ids=["patch", "scene"])
def test_a_run_with_every_augmentation_resumes_exactly(tmp_path, field, field_config, one_thread, model):
    """Every transform's random numbers come from the run's saved shuffle generator: a run interrupted after
    epoch 1 of 2 and resumed repeats the uninterrupted one (a patch model, and a scene model on crops)."""
    config = field_config(epochs=2, augment=",".join(ALL), write_map=False, **model)
    whole = train(config, tmp_path / "whole", scene=field.scene, progress=False)
    train(field_config(epochs=2, write_map=False, **model), tmp_path / "plain", scene=field.scene, progress=False)
    assert history_without_time(tmp_path / "plain") != history_without_time(tmp_path / "whole")
    assert read_config(tmp_path / "whole")["config"]["augment"] == list(ALL)

    def stop_after_first_epoch(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        train(config, tmp_path / "r", scene=field.scene, progress=False, on_epoch=stop_after_first_epoch)
    assert not (tmp_path / "r" / "metrics.json").exists()
    assert resume(tmp_path / "r", progress=False) == whole
    assert json.loads((tmp_path / "r" / "metrics.json").read_text()) == \
        json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert history_without_time(tmp_path / "r") == history_without_time(tmp_path / "whole")


def test_a_pixel_model_fits_on_augmented_spectra(tmp_path, field, field_config):
    """A random forest reads the centre pixel of each augmented window: the run is repeatable and differs from the
    unaugmented one."""
    settings = {"model": "rf", "model_kwargs": {"trees": 20}, "write_map": False}
    runs = [train(field_config(augment=names, **settings), tmp_path / str(i), scene=field.scene, progress=False)
            for i, names in enumerate(["noise,brightness,mix", "noise,brightness,mix", ""])]
    assert runs[0] == runs[1] and runs[0]["confusion_matrix"] != runs[2]["confusion_matrix"]
