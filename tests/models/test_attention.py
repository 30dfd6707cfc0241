"""Attention slot: every registered block keeps the shape, trains, follows the input's dtype; the registry
resolves names, classes, factories and blocks of installed packages (entry points)."""
import contextlib
import functools
import importlib
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import hsi
from hsi import plugins
from hsi.errors import ConfigError
from hsi.models.attention import create_attention, list_attention, register_attention, registry
from hsi.models.attention.cbam import CBAM
from hsi.models.attention.criss_cross import CrissCrossAttention
from hsi.models.attention.encoding import ContextEncoding
from hsi.models.attention.se import SqueezeExcitation, eca_kernel_size

BLOCKS = list_attention()
BUILT_IN = sorted(registry.BLOCKS.registered)
IDENTITY_AT_INIT = ["pam", "cam", "danet", "nonlocal", "criss_cross"]
SPATIAL_SIZES = [1, 3, 13, 19]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def wake(block):
    """Move every all-zero parameter (residual gates, zero-initialised BN scales) away from zero."""
    with torch.no_grad():
        for parameter in block.parameters():
            if not parameter.any():
                parameter.fill_(0.5)
    return block


class Gate(nn.Module):
    def __init__(self, channels, scale=1.0):
        super().__init__()
        self.channels = channels
        self.scale = scale

    def forward(self, x):
        return x * self.scale


def test_built_in_blocks_are_registered():
    assert set(BUILT_IN) >= {"se", "eca", "cbam", "bam", "pam", "cam", "danet", "nonlocal", "criss_cross", "sk",
                             "strip_pool", "encoding", "aspp", "ppm"}
    assert BLOCKS == sorted(BLOCKS)


@pytest.mark.parametrize("channels", [8, 96, 576])
@pytest.mark.parametrize("name", BLOCKS)
def test_block_keeps_shape_and_trains(name, channels):
    block = create_attention(name, channels)
    for size in SPATIAL_SIZES:
        block.eval()
        x = torch.randn(1, channels, size, size)
        with torch.no_grad():
            out = block(x)
        assert out.shape == x.shape, f"eval, {size}x{size}"
        assert torch.isfinite(out).all(), f"eval, {size}x{size}"

        block.train()
        x = torch.randn(2, channels, size, size, requires_grad=True)
        out = block(x)
        assert out.shape == x.shape, f"train, {size}x{size}"
        block.zero_grad()
        (out * torch.randn_like(out)).sum().backward()
        assert torch.isfinite(x.grad).all(), f"input gradient, {size}x{size}"
        for parameter_name, parameter in block.named_parameters():
            assert parameter.grad is not None, f"{parameter_name} unused at {size}x{size}"
            assert torch.isfinite(parameter.grad).all(), f"{parameter_name} gradient at {size}x{size}"


@pytest.mark.parametrize("name", BLOCKS)
def test_block_fits_narrow_and_wide_inputs(name):
    for channels, size in [(1, 2), (1664, 3)]:
        block = create_attention(name, channels).eval()
        x = torch.randn(1, channels, size, size)
        with torch.no_grad():
            out = block(x)
        assert out.shape == x.shape and torch.isfinite(out).all(), f"{channels} channels"


@pytest.mark.parametrize("name", IDENTITY_AT_INIT)
def test_residual_blocks_are_the_identity_at_initialisation(name):
    block = create_attention(name, 16)
    x = torch.randn(2, 16, 7, 5)
    for mode in (block.train, block.eval):
        mode()
        torch.testing.assert_close(block(x), x, rtol=0, atol=0)
    assert not torch.allclose(wake(block)(x), x), "the block does nothing even once its gates are open"


@pytest.mark.parametrize("name", BLOCKS)
def test_block_follows_float64_input_and_mode(name):
    block = wake(create_attention(name, 12)).double()
    x = torch.randn(2, 12, 5, 7, dtype=torch.float64)
    block.train()
    out = block(x)
    assert out.dtype == torch.float64 and out.shape == x.shape
    out.sum().backward()

    block.eval()
    with torch.no_grad():
        together, alone = block(x), block(x[:1])
    assert not any(module.training for module in block.modules()), "a block switched itself to train mode"
    assert together.dtype == torch.float64
    torch.testing.assert_close(together[:1], alone, msg="in eval, a sample's output depends on its batch")
    torch.testing.assert_close(block(x), together, rtol=0, atol=0, msg="eval output is not deterministic")


def test_no_cuda_calls_in_the_package():
    package = Path(hsi.__file__).parent
    offenders = [f"{path.relative_to(package)}:{number}" for path in sorted(package.rglob("*.py"))
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
                 if ".cuda(" in line]
    assert not offenders, f".cuda( hard-codes the device: {offenders}"


def criss_cross_reference(block, x):
    """One criss-cross pass written out position by position: each pixel attends to its row and column."""
    query, key, value = block.query(x), block.key(x), block.value(x)
    batch, _, height, width = x.shape
    out = x.clone()
    for n in range(batch):
        for i in range(height):
            for j in range(width):
                positions = sorted({(g, j) for g in range(height)} | {(i, a) for a in range(width)})
                energies = torch.stack([query[n, :, i, j] @ key[n, :, g, a] for g, a in positions])
                weights = torch.softmax(energies, dim=0)
                context = sum(w * value[n, :, g, a] for w, (g, a) in zip(weights, positions))
                out[n, :, i, j] = x[n, :, i, j] + block.gamma * context
    return out


def test_criss_cross_matches_a_position_by_position_reference():
    block = wake(CrissCrossAttention(6, recurrence=2)).double()
    x = torch.randn(2, 6, 3, 4, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(block.attend(x), criss_cross_reference(block, x))
        torch.testing.assert_close(block(x), criss_cross_reference(block, criss_cross_reference(block, x)))


def test_encoding_matches_explicit_residuals():
    block = ContextEncoding(10, codewords=4).double()
    x = torch.randn(2, 10, 3, 5, dtype=torch.float64)
    features = x.flatten(2).transpose(1, 2)                                     # (N, HW, C)
    residuals = features[:, :, None, :] - block.codewords                       # (N, HW, K, C)
    assignment = torch.softmax(block.scales * residuals.square().sum(-1), dim=-1)
    expected = (assignment[..., None] * residuals).sum(1)
    torch.testing.assert_close(block.encode(x), expected)


@pytest.mark.parametrize("channels, kernel_size", [(1, 1), (8, 3), (64, 3), (256, 5), (576, 5), (1664, 5)])
def test_eca_kernel_size_grows_with_channels(channels, kernel_size):
    assert eca_kernel_size(channels) == kernel_size
    assert create_attention("eca", channels).kernel_size == kernel_size


def test_unknown_name_lists_known_blocks():
    with pytest.raises(ConfigError, match="unknown attention block 'magic'; known blocks: ") as error:
        create_attention("magic", 16)
    for name in BLOCKS:
        assert name in str(error.value)


@pytest.mark.parametrize("spec", [None, "none", "None", " NONE "])
def test_none_means_no_block(spec):
    assert create_attention(spec, 16) is None


def test_names_are_case_insensitive_and_keywords_reach_the_block():
    assert isinstance(create_attention("CBAM", 16), CBAM)
    assert create_attention("Criss_Cross", 16, recurrence=3).recurrence == 3
    assert create_attention("eca", 16, kernel_size=7).kernel_size == 7


@pytest.mark.parametrize("spec", [42, ["se"], 1.5])
def test_spec_of_another_type_is_refused(spec):
    with pytest.raises(ConfigError, match="attention must be None, a block name"):
        create_attention(spec, 16)


@pytest.mark.parametrize("channels", [0, -3, 2.5, True, "16"])
def test_bad_channel_count_is_refused(channels):
    with pytest.raises(ConfigError, match=f"channels must be an integer >= 1, got {channels!r}"):
        create_attention("se", channels)


@pytest.mark.parametrize("name", BUILT_IN)
def test_blocks_built_directly_check_channels(name):
    with pytest.raises(ConfigError, match="channels must be an integer >= 1, got 0"):
        registry.BLOCKS.registered[name](0)


@pytest.mark.parametrize("name, kw, message", [
    ("se", {"reduction": 0}, "reduction must be an integer >= 1, got 0"),
    ("cbam", {"min_hidden": -1}, "min_hidden must be an integer >= 1, got -1"),
    ("eca", {"kernel_size": 4}, "kernel_size must be odd, got 4"),
    ("eca", {"gamma": 0}, "gamma must be positive, got 0"),
    ("cbam", {"kernel_size": 6}, "kernel_size must be odd, got 6"),
    ("criss_cross", {"recurrence": 0}, "recurrence must be an integer >= 1, got 0"),
    ("encoding", {"codewords": 0}, "codewords must be an integer >= 1, got 0"),
    ("ppm", {"bins": ()}, "bins must list at least one value"),
    ("aspp", {"dilations": (2, 0)}, "each of dilations must be an integer >= 1, got 0"),
    ("sk", {"groups": 0}, "groups must be an integer >= 1, got 0"),
])
def test_bad_keyword_is_refused(name, kw, message):
    with pytest.raises(ConfigError, match=message):
        create_attention(name, 16, **kw)


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made in the test are dropped afterwards."""
    monkeypatch.setattr(registry.BLOCKS, "registered", dict(registry.BLOCKS.registered))


def test_register_attention_decorator(scratch_registry):
    @register_attention("Test_Gate_XYZ")
    class TestGate(Gate):
        pass

    assert "test_gate_xyz" in list_attention()
    block = create_attention("TEST_GATE_XYZ", 16, scale=3.0)
    assert type(block) is TestGate and block.channels == 16 and block.scale == 3.0
    assert register_attention("test_gate_xyz")(TestGate) is TestGate      # the same object again is fine
    with pytest.raises(ConfigError, match="'test_gate_xyz' is already registered"):
        register_attention("test_gate_xyz")(Gate)
    with pytest.raises(ConfigError, match="'se' is already registered"):
        register_attention("se")(Gate)
    with pytest.raises(ConfigError, match="cannot be registered"):
        register_attention("none")


def test_registration_made_in_a_test_does_not_leak():
    assert "test_gate_xyz" not in list_attention()


def test_class_and_factory_specs():
    block = create_attention(Gate, 16, scale=2.0)
    assert type(block) is Gate and block.channels == 16 and block.scale == 2.0
    assert create_attention(functools.partial(Gate, scale=4.0), 8).scale == 4.0

    calls = []

    def factory(channels, **kw):
        calls.append((channels, kw))
        return nn.Identity()

    assert isinstance(create_attention(factory, 24, alpha=1), nn.Identity)
    assert calls == [(24, {"alpha": 1})]
    with pytest.raises(ConfigError, match="built a str, expected an nn.Module"):
        create_attention(lambda channels: "not a block", 8)


def test_entry_points_are_read_once_at_first_use(monkeypatch):
    reads = []

    def fake_entry_points(group):
        reads.append(group)
        return []

    monkeypatch.setattr(plugins, "entry_points", fake_entry_points)      # every registry reads through hsi.plugins
    monkeypatch.setattr(registry.BLOCKS, "_plugins", None)
    assert reads == []
    list_attention()
    create_attention("se", 8)
    assert reads == ["hsi.attention"]
    registry.reload_entry_points()
    assert reads == ["hsi.attention"] * 2


PLUGIN_MODULE = "myblocks_hsi_test"
PLUGIN_SOURCE = '''
from torch import nn


class Doubler(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.channels = channels

    def forward(self, x):
        return 2 * x
'''
PLUGIN_ENTRY_POINTS = f"""[hsi.attention]
my_block = {PLUGIN_MODULE}:Doubler
broken_block = {PLUGIN_MODULE}:Missing
se = {PLUGIN_MODULE}:Doubler
"""


@contextlib.contextmanager
def installed_plugin(folder):
    """A throw-away distribution offering ``hsi.attention`` blocks, on ``sys.path`` for the duration.

    Yields the warnings given while reading the entry points; afterwards the registry forgets the plug-in.
    """
    (folder / f"{PLUGIN_MODULE}.py").write_text(PLUGIN_SOURCE)
    dist_info = folder / f"{PLUGIN_MODULE}-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: myblocks-hsi-test\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(PLUGIN_ENTRY_POINTS)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.syspath_prepend(str(folder))
            with pytest.warns(RuntimeWarning) as caught:
                registry.reload_entry_points()
            yield "\n".join(str(warning.message) for warning in caught)
    finally:
        sys.modules.pop(PLUGIN_MODULE, None)
        registry.reload_entry_points()


def test_entry_point_of_an_installed_package_adds_a_block(tmp_path):
    with installed_plugin(tmp_path) as warnings_text:
        names = list_attention()
        assert "my_block" in names
        block = create_attention("my_block", 16)
        assert type(block) is importlib.import_module(PLUGIN_MODULE).Doubler and block.channels == 16
        x = torch.randn(2, 16, 5, 5)
        assert torch.equal(block(x), 2 * x)

        # a broken entry point is skipped with a warning naming it; the built-ins keep working
        assert "'broken_block'" in warnings_text and "failed to load" in warnings_text
        assert "broken_block" not in names
        assert set(BUILT_IN) <= set(names)
        # a built-in name wins over an entry point of the same name
        assert "'se'" in warnings_text and "a built-in block already has that name" in warnings_text
        assert isinstance(create_attention("se", 16), SqueezeExcitation)

    assert "my_block" not in list_attention()
    with pytest.raises(ConfigError, match="unknown attention block 'my_block'"):
        create_attention("my_block", 16)
