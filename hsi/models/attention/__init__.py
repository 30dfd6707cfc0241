"""Attention blocks for the model's plug-in slots, chosen by name: ``create_attention("cbam", channels)``.

Importing this package registers the built-in blocks; :func:`list_attention` shows them together with
blocks that installed packages offer through the ``hsi.attention`` entry-point group.
"""
# Imported for their registrations.
from . import cbam, criss_cross, danet, dcm, encoding, nonlocal_, pyramid, se, sk, strip_pool  # noqa: F401
from .registry import create_attention, list_attention, register_attention

__all__ = ["create_attention", "list_attention", "register_attention"]
