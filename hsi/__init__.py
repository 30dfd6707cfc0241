"""hsi: hyperspectral image classification: HybridSN, CNN backbones, FCNs, one attention slot."""
from ._version import __version__
from .data.scenes import Scene, list_scenes, load_scene
from .data.splits import list_splits, register_split
from .errors import CheckpointError, ConfigError, DataError, HSIError, SplitError
from .experiments import compare
from .inference import predict_scene, scene_logits
from .models import build_model, list_attention, list_models, register_attention

__all__ = [
    "__version__",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "HSIError",
    "Scene",
    "SplitError",
    "build_model",
    "compare",
    "list_attention",
    "list_models",
    "list_scenes",
    "list_splits",
    "load_scene",
    "predict_scene",
    "register_attention",
    "register_split",
    "scene_logits",
]
