"""hsi: hyperspectral image classification: HybridSN, CNN backbones, FCNs, one attention slot."""
from ._version import __version__

from .comparison import compare  # noqa: E402
from .data.scenes import Scene, list_scenes, load_scene  # noqa: E402
from .errors import CheckpointError, ConfigError, DataError, HSIError, SplitError  # noqa: E402
from .inference import predict_scene, scene_logits  # noqa: E402
from .models import build_model, list_attention, list_models, register_attention  # noqa: E402

__all__ = ["CheckpointError", "ConfigError", "DataError", "HSIError", "Scene", "SplitError", "build_model", "compare",
           "list_attention", "list_models", "list_scenes", "load_scene", "predict_scene", "register_attention",
           "scene_logits"]
