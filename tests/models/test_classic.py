"""The SVM and random-forest baselines equal scikit-learn's own outputs, from tensors only."""
import io

import numpy as np
import pytest
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.svm import SVC

import hsi
from hsi.data.preprocess import fit_pca


@pytest.fixture(scope="module")
def pixels(indian_pines):
    """Whitened 15-component spectra of Indian Pines: 500 training pixels (Oats left out), 1,500 others."""
    spectra = fit_pca(indian_pines.cube, 15, whiten=True).transform(indian_pines.cube).reshape(-1, 15)
    labels = indian_pines.labels.ravel()
    order = np.random.default_rng(0).permutation(np.flatnonzero((labels >= 0) & (labels != 8)))
    return spectra, labels, order[:500], order[500:2000]


def weights_only_round_trip(model, name, **options):
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    again = hsi.build_model(name, bands=15, n_classes=16, patch_size=1, **options)
    again.load_state_dict(torch.load(buffer, weights_only=True))
    return again


def test_svm_equals_scikit_learn_decision_function(pixels):
    spectra, labels, train, test = pixels
    model = hsi.build_model("svm", bands=15, n_classes=16, patch_size=1)
    chosen = model.fit(spectra[train], labels[train])
    reference = SVC(C=chosen["C"], gamma=chosen["gamma"]).fit(spectra[train], labels[train])
    windows = torch.from_numpy(spectra[test]).reshape(-1, 1, 15, 1, 1).expand(-1, 1, 15, 5, 5)   # centre = spectrum
    scores = weights_only_round_trip(model, "svm")(windows).double().numpy()
    expected = reference.decision_function(spectra[test])
    present = reference.classes_
    assert 8 not in present and chosen["support_vectors"] == len(reference.support_vectors_)
    np.testing.assert_allclose(scores[:, present], expected, rtol=1e-5, atol=1e-5)
    assert (scores[:, 8] < scores[:, present].min(1)).all()          # a class never trained on never wins
    np.testing.assert_array_equal(scores.argmax(1), present[expected.argmax(1)])


def test_random_forest_equals_scikit_learn_probabilities(pixels):
    spectra, labels, train, test = pixels
    model = hsi.build_model("rf", bands=15, n_classes=16, patch_size=1, trees=25, seed=3)
    model.fit(spectra[train], labels[train])
    reference = RandomForestClassifier(25, random_state=3, n_jobs=1).fit(spectra[train], labels[train])
    log_proba = weights_only_round_trip(model, "rf", trees=25, seed=3)(torch.from_numpy(spectra[test]))
    proba = torch.softmax(log_proba, 1).double().numpy()
    np.testing.assert_allclose(proba[:, reference.classes_], reference.predict_proba(spectra[test]), atol=1e-6)
    assert (proba[:, 8] == 0).all()
    assert not [key for key in model.state_dict() if key.startswith("flat_")]   # derived on loading, not saved
    np.testing.assert_array_equal(log_proba.argmax(1).numpy(), reference.predict(spectra[test]))


def test_unfitted_and_misused_baselines_say_so():
    with pytest.raises(hsi.ConfigError, match="not fitted"):
        hsi.build_model("svm", bands=15, n_classes=4, patch_size=1)(torch.zeros(2, 15))
    with pytest.raises(hsi.ConfigError, match="no attention slot"):
        hsi.build_model("svm", bands=15, n_classes=4, patch_size=1, attention="se")


def test_svm_cross_validates_quietly_with_a_two_pixel_class(pixels, recwarn):
    """10 % of Oats is 2 pixels, fewer than the 3 folds: the grid search still runs, without scikit-learn's warning."""
    spectra, labels, train, _ = pixels
    oats = np.flatnonzero(labels == 8)[:2]
    chosen = hsi.build_model("svm", bands=15, n_classes=16, patch_size=1).fit(
        spectra[np.r_[train, oats]], labels[np.r_[train, oats]])
    assert chosen["C"] in (1, 10, 100, 1000)
    assert not [w for w in recwarn if "least populated class" in str(w.message)]
