"""DANet's channel (CAM) and dual attention against a transcription of the authors' released code
(junfu1115/DANet, encoding/nn/da_att.py: PAM_Module, CAM_Module), with shared weights and a non-zero gamma."""
import pytest
import torch

from hsi.models.attention import create_attention


def published_cam(x, gamma):
    """CAM_Module.forward: energy_new = max(energy, -1, keepdim) - energy; attention = softmax(energy_new)."""
    b, c, h, w = x.size()
    query = x.view(b, c, -1)
    key = x.view(b, c, -1).permute(0, 2, 1)
    energy = torch.bmm(query, key)
    energy_new = torch.max(energy, -1, keepdim=True)[0].expand_as(energy) - energy
    attention = torch.softmax(energy_new, dim=-1)
    out = torch.bmm(attention, x.view(b, c, -1)).view(b, c, h, w)
    return gamma * out + x


def published_pam(x, query_conv, key_conv, value_conv, gamma):
    """PAM_Module.forward."""
    b, c, h, w = x.size()
    query = query_conv(x).view(b, -1, w * h).permute(0, 2, 1)
    key = key_conv(x).view(b, -1, w * h)
    attention = torch.softmax(torch.bmm(query, key), dim=-1)
    out = torch.bmm(value_conv(x).view(b, -1, w * h), attention.permute(0, 2, 1)).view(b, c, h, w)
    return gamma * out + x


def _relative(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.fixture(scope="module")
def x():
    torch.set_num_threads(1)
    return torch.randn(2, 16, 7, 7, generator=torch.Generator().manual_seed(0))


def test_cam_matches_the_published_module(x):
    cam = create_attention("cam", 16)
    with torch.no_grad():
        cam.gamma.fill_(0.7)
        assert _relative(cam(x), published_cam(x, 0.7)) <= 1e-5


def test_danet_is_published_pam_plus_published_cam(x):
    danet = create_attention("danet", 16)
    with torch.no_grad():
        danet.position.gamma.fill_(0.5)
        danet.channel.gamma.fill_(-1.3)
        p = danet.position
        expected = published_pam(x, p.query, p.key, p.value, 0.5) + published_cam(x, -1.3) - x
        assert _relative(danet(x), expected) <= 1e-5
