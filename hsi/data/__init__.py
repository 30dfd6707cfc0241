"""Scenes, preprocessing, patches and splits."""
