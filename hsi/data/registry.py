"""Known scenes: files, .mat keys, official class names, palette, download sources."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

_EHU = "https://www.ehu.eus/ccwintco/uploads"


@dataclass(frozen=True)
class SceneInfo:
    name: str
    title: str
    cube_file: str
    gt_file: str
    cube_key: str
    gt_key: str
    classes: dict  # original label id -> official class name
    cube_url: str
    gt_url: str
    cube_sha256: str | None = None
    gt_sha256: str | None = None


_SALINAS = {
    1: "Brocoli_green_weeds_1", 2: "Brocoli_green_weeds_2", 3: "Fallow", 4: "Fallow_rough_plow",
    5: "Fallow_smooth", 6: "Stubble", 7: "Celery", 8: "Grapes_untrained", 9: "Soil_vinyard_develop",
    10: "Corn_senesced_green_weeds", 11: "Lettuce_romaine_4wk", 12: "Lettuce_romaine_5wk",
    13: "Lettuce_romaine_6wk", 14: "Lettuce_romaine_7wk", 15: "Vinyard_untrained", 16: "Vinyard_vertical_trellis",
}


def _numbered(names: Sequence[str]) -> dict[int, str]:
    return dict(enumerate(names, start=1))


SCENES = {info.name: info for info in [
    SceneInfo(
        "indian_pines", "AVIRIS Indian Pines (corrected, 200 bands)",
        "Indian_pines_corrected.mat", "Indian_pines_gt.mat", "indian_pines_corrected", "indian_pines_gt",
        _numbered(["Alfalfa", "Corn-notill", "Corn-mintill", "Corn", "Grass-pasture", "Grass-trees",
                   "Grass-pasture-mowed", "Hay-windrowed", "Oats", "Soybean-notill", "Soybean-mintill",
                   "Soybean-clean", "Wheat", "Woods", "Buildings-Grass-Trees-Drives", "Stone-Steel-Towers"]),
        f"{_EHU}/6/67/Indian_pines_corrected.mat", f"{_EHU}/c/c4/Indian_pines_gt.mat",
        "ec2f8808710919d566f70f0d4aa885aae1ddfd42b734aba71c5e12ca65450939",
        "65c4687a8ab04f6da4789799bc3bc4f6e88bccac3ed6a2e6ae367e5e6b9e429c"),
    SceneInfo(
        "salinas", "AVIRIS Salinas Valley (corrected, 204 bands)",
        "Salinas_corrected.mat", "Salinas_gt.mat", "salinas_corrected", "salinas_gt", _SALINAS,
        f"{_EHU}/a/a3/Salinas_corrected.mat", f"{_EHU}/f/fa/Salinas_gt.mat"),
    SceneInfo(
        "salinas_a", "AVIRIS Salinas-A (sub-scene of Salinas, 204 bands)",
        "SalinasA_corrected.mat", "SalinasA_gt.mat", "salinasA_corrected", "salinasA_gt",
        {k: _SALINAS[k] for k in (1, 10, 11, 12, 13, 14)},
        f"{_EHU}/1/1a/SalinasA_corrected.mat", f"{_EHU}/a/aa/SalinasA_gt.mat",
        "d75684ed3ab71a1024cee0f9db9061f50a3523a92ff5edfbbb1eed976b9f1721",
        "17814c1d3296c0e29b27f320f2c4174d2a68adb87e376abe78f02923e2c2e454"),
    SceneInfo(
        "pavia_u", "ROSIS Pavia University (103 bands)", "PaviaU.mat", "PaviaU_gt.mat", "paviaU", "paviaU_gt",
        _numbered(["Asphalt", "Meadows", "Gravel", "Trees", "Painted metal sheets", "Bare Soil", "Bitumen",
                   "Self-Blocking Bricks", "Shadows"]),
        f"{_EHU}/e/ee/PaviaU.mat", f"{_EHU}/5/50/PaviaU_gt.mat"),
    SceneInfo(
        "pavia_c", "ROSIS Pavia Centre (102 bands)", "Pavia.mat", "Pavia_gt.mat", "pavia", "pavia_gt",
        _numbered(["Water", "Trees", "Asphalt", "Self-Blocking Bricks", "Bitumen", "Tiles", "Shadows",
                   "Meadows", "Bare Soil"]),
        f"{_EHU}/e/e3/Pavia.mat", f"{_EHU}/5/53/Pavia_gt.mat"),
    SceneInfo(
        "ksc", "AVIRIS Kennedy Space Center (176 bands)", "KSC.mat", "KSC_gt.mat", "KSC", "KSC_gt",
        _numbered(["Scrub", "Willow swamp", "Cabbage palm hammock", "Cabbage palm/oak hammock", "Slash pine",
                   "Oak/broadleaf hammock", "Hardwood swamp", "Graminoid marsh", "Spartina marsh",
                   "Cattail marsh", "Salt marsh", "Mud flats", "Water"]),
        f"{_EHU}/2/26/KSC.mat", f"{_EHU}/a/a6/KSC_gt.mat"),
    SceneInfo(
        "botswana", "Hyperion Botswana (145 bands)", "Botswana.mat", "Botswana_gt.mat", "Botswana", "Botswana_gt",
        _numbered(["Water", "Hippo grass", "Floodplain grasses 1", "Floodplain grasses 2", "Reeds", "Riparian",
                   "Firescar", "Island interior", "Acacia woodlands", "Acacia shrublands", "Acacia grasslands",
                   "Short mopane", "Mixed mopane", "Exposed soils"]),
        f"{_EHU}/7/72/Botswana.mat", f"{_EHU}/5/58/Botswana_gt.mat"),
]}

# Palettes indexed by original label id - 1, so a sub-scene (Salinas-A) keeps its parent's colours.
# "distinct" (the default): 24 colours chosen by farthest-point sampling in CIELAB, pairwise CIE76 ΔE >= 39 and
# >= 54 from black (unlabelled), >= 47 from white; "published": the colours the toolkit used before, in which some
# pairs (Indian Pines Corn-notill / Woods, Grass-pasture / Soybean-mintill) are hard to tell apart.
PALETTES = {
    "distinct": np.array([
        (0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 30, 180), (255, 210, 0), (0, 135, 255), (15, 135, 60),
        (135, 75, 0), (60, 0, 90), (0, 135, 165), (255, 135, 150), (0, 255, 240), (210, 255, 150),
        (180, 90, 255), (240, 165, 255), (120, 0, 45), (255, 135, 0), (135, 135, 105), (0, 255, 150),
        (255, 195, 120), (195, 255, 30), (255, 0, 90), (135, 150, 0), (135, 90, 135),
    ], dtype=np.uint8),
    "published": np.array([
        (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255),
        (176, 48, 96), (46, 139, 87), (160, 32, 240), (255, 127, 80), (127, 255, 212), (218, 112, 214),
        (160, 82, 45), (127, 255, 0), (216, 191, 216), (0, 0, 128), (100, 149, 237), (255, 215, 0),
        (0, 128, 128), (128, 128, 0), (255, 165, 0), (75, 0, 130), (210, 105, 30), (112, 128, 144),
    ], dtype=np.uint8),
}


def palette_for(label_ids: Sequence[int] | np.ndarray, palette: str = "distinct") -> np.ndarray:
    """K×3 uint8 colours for the given original label ids (the same id always gets the same colour).

    ``palette`` is a name of :data:`PALETTES`: ``"distinct"`` or ``"published"``."""
    if palette not in PALETTES:
        raise ConfigError(f"unknown palette {palette!r}; expected one of {', '.join(PALETTES)}")
    ids = np.asarray(label_ids, dtype=np.int64)
    colours = PALETTES[palette]
    return colours[(ids - 1) % len(colours)].copy()


def find_by_file(filename: str) -> SceneInfo | None:
    """The registry entry whose cube or label file has this name, or None."""
    for info in SCENES.values():
        if filename in (info.cube_file, info.gt_file):
            return info
    return None
