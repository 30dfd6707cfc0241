"""``hsi models``: each model's declared smallest window and band count hold for its builder, and the tables in
docs/models.md and README.md are the ones the command prints."""
import errno
import io
import sys
from pathlib import Path

import pytest
import torch

import hsi
from hsi.cli import main
from hsi.errors import ConfigError
from hsi.models import catalog
from hsi.models.registry import model_entry

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- table printed by: hsi models --markdown -->", "<!-- end of the table -->"


@pytest.fixture(scope="module")
def rows():
    """Every model's row, built once for the module (on the meta device: no weights are allocated)."""
    return catalog.model_rows()


@pytest.fixture
def listed(rows, monkeypatch):
    """``hsi models`` reads the module's rows instead of building every model again."""
    monkeypatch.setattr(catalog, "model_rows", lambda: rows)
    return rows


@pytest.mark.parametrize("name", hsi.list_models())
def test_declared_limits_are_the_builders(name, one_thread):
    """The builder runs at the declared smallest window and band count and refuses the next smaller ones (the
    next smaller odd window too: an even one is refused for being even)."""
    entry = model_entry(name)
    patch, bands = entry.min_patch, entry.min_bands
    for smaller in {patch - 1, patch - 2} if patch > 1 else ():
        with pytest.raises(ConfigError):
            hsi.build_model(name, bands=bands, n_classes=4, patch_size=smaller)
    if bands > 1:
        with pytest.raises(ConfigError):
            hsi.build_model(name, bands=bands - 1, n_classes=4, patch_size=patch)
    torch.manual_seed(0)
    model = hsi.build_model(name, bands=bands, n_classes=4, patch_size=patch).eval()
    if getattr(model, "fitted_by", None):           # svm, rf: nothing to run before a fit
        return
    with torch.no_grad():
        if model.kind == "scene":
            assert model(torch.randn(1, bands, patch, patch)).shape == (1, 4, patch, patch)
        else:
            assert model(torch.randn(2, 1, bands, patch, patch)).shape == (2, 4)


def test_rows_say_what_the_models_are(rows):
    by_name = {row.name: row for row in rows}
    assert list(by_name) == hsi.list_models()
    hybridsn = by_name["hybridsn"]
    assert (hybridsn.kind, hybridsn.min_patch, hybridsn.min_bands, hybridsn.mapping) == ("patch", 9, 13, "dense, exact")
    assert (hybridsn.parameters, hybridsn.window, hybridsn.slots) == (5_122_296, 25, ("after_3d", "after_2d"))
    assert (by_name["cnn3d"].window, by_name["cnn3d"].min_bands) == (5, 3)       # the builder's own window
    assert (by_name["svm"].kind, by_name["svm"].mapping, by_name["svm"].parameters) == ("pixel", "per pixel", None)
    assert (by_name["fcn8s"].kind, by_name["fcn8s"].min_window, by_name["fcn8s"].slots) == ("scene", "whole scene",
                                                                                            ("context",))
    assert by_name["spectralformer"].attention == "no" and by_name["resnet18"].attention == "yes: unit"
    assert all(row.paper and row.summary.endswith(".") for row in rows)


def test_models_prints_the_table_and_one_model(listed, capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["model", "kind"] and len(lines) == len(listed) + 1
    assert lines[1].split()[:4] == ["hybridsn", "patch", "9×9", "13"]
    assert main(["models", "a2s2k_resnet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("a2s2k_resnet: A2S2K-ResNet (Roy et al. 2021)")
    assert "Roy et al., IEEE TGRS 2021" in out and "at least 3×3" in out and "at least 7 (--pca)" in out


def test_an_unknown_model_is_one_line_listing_the_names(capsys):
    assert main(["models", "hybrid"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown model 'hybrid'; known models: hybridsn, ") and "\n" not in err


class ClosedPipe(io.StringIO):
    """A stdout whose reader has gone, as ``hsi models | head -3`` leaves it."""

    def write(self, text):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def test_output_piped_into_head_ends_quietly(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(err, "close", lambda: None)
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["models", "fcn8s"]) == 0 and err.getvalue() == ""       # was "error: Broken pipe", status 2


def test_train_help_points_at_hsi_models(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "'hsi models' gives each one's smallest window and band" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("document", ["docs/models.md", "README.md"])
def test_committed_tables_are_the_printed_one(document, listed, capsys):
    assert main(["models", "--markdown"]) == 0
    printed = capsys.readouterr().out.strip()
    text = (ROOT / document).read_text(encoding="utf-8")
    assert START in text and END in text, f"{document} lost its table markers"
    committed = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert committed == printed, f"{document}: paste the output of 'hsi models --markdown' between its markers"
