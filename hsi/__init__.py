"""hsi: hyperspectral image classification with the HybridSN family."""
from .data.scenes import Scene, list_scenes, load_scene
from .errors import CheckpointError, ConfigError, DataError, HSIError, SplitError

__version__ = "0.1.0"
