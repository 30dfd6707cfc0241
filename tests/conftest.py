"""Shared fixtures: the real scenes in ../shared/data (or $HSI_SHARED_DATA)."""
import os
from pathlib import Path

import pytest

import hsi

SHARED_DATA = Path(os.environ.get("HSI_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data():
    if not (SHARED_DATA / "salinas_a" / "SalinasA_corrected.mat").is_file():
        pytest.fail(f"real scenes not found in {SHARED_DATA}; set HSI_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def indian_pines():
    return hsi.load_scene("indian_pines")


@pytest.fixture(scope="session")
def salinas_a(shared_data):
    return hsi.load_scene("salinas_a", data_dir=shared_data)
