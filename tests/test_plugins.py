"""hsi.plugins.Registry, the one registry behind models, attention blocks, augmentations, splits, readers and map
formats: names registered in code, entry points of installed packages, and the errors and warnings of both."""
import pytest

from hsi.errors import ConfigError, SplitError
from hsi.plugins import Registry

GROUP = "hsi.test_registry"


def double(x):
    return 2 * x


def triple(x):
    return 3 * x


def test_a_name_is_registered_once():
    registry = Registry("widget", GROUP)
    assert registry.register("double", double) is double
    assert registry.register("double", double) is double               # the same value again is fine
    with pytest.raises(ConfigError, match=r"^widget 'double' is already registered as <function double"):
        registry.register("double", triple)
    assert registry.get("double") is double and "double" in registry and "triple" not in registry


def test_an_unknown_name_is_the_registry_error_listing_the_known_ones():
    registry = Registry("split", GROUP, SplitError)
    registry.register("triple", triple)
    registry.register("double", double)
    with pytest.raises(SplitError, match=r"^unknown split 'half'; known splits: triple, double$"):
        registry.get("half")
    assert registry.find("half") is None and registry.find(3) is None


def test_names_are_normalised_and_optionally_sorted():
    registry = Registry("widget", GROUP, key=lambda name: name.strip().lower(), sort=True)
    registry.register(" Triple", triple)
    registry.register("DOUBLE", double)
    assert registry.names() == ["double", "triple"] and registry.get("Triple ") is triple


def test_entry_points_are_read_at_first_use_and_checked(install_distribution, monkeypatch):
    install_distribution("hsi-test-registry", f"[{GROUP}]\nhalf = hsi_test_registry:half\n"
                                              "double = hsi_test_registry:half\nbroken = hsi_test_registry:Missing\n"
                                              "number = hsi_test_registry:NUMBER\n",
                         {"hsi_test_registry": "NUMBER = 3\n\ndef half(x):\n    return x / 2\n"})

    def adopt(name, loaded):
        if not callable(loaded):
            raise ConfigError("it is not a function")
        return loaded

    registry = Registry("widget", GROUP, label="widget plug-in", thing="function", adopt=adopt)
    registry.register("double", double)
    with pytest.warns(RuntimeWarning) as caught:
        assert registry.names() == ["double", "half"]
    messages = "\n".join(str(w.message) for w in caught)
    assert "widget plug-in entry point 'double' = 'hsi_test_registry:half' ignored: a built-in function already " \
           "has that name" in messages
    assert "widget plug-in entry point 'broken' = 'hsi_test_registry:Missing' skipped: it failed to load" in messages
    assert "widget plug-in entry point 'number' skipped: it is not a function" in messages
    assert registry.get("half")(3) == 1.5 and registry.get("double") is double
    assert registry.plugins() is registry.plugins()                    # read once
    monkeypatch.undo()                                                  # the distribution is gone
    registry.reload()
    assert registry.names() == ["double"]
