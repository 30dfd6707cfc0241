"""One exception family for every user-facing mistake.

Each error is a ``ValueError`` so plain ``except ValueError`` code keeps working; the CLI prints
any :class:`HSIError` as a single ``error: ...`` line and exits with status 2.
"""


class HSIError(ValueError):
    """Base class: bad input named in the message together with what was expected."""


class DataError(HSIError):
    """A scene file or array is missing, unreadable or inconsistent."""


class SplitError(HSIError):
    """A train/val/test split cannot be made as requested."""


class ConfigError(HSIError):
    """An option has an impossible value (unknown name, bad patch size, too many components...)."""


class CheckpointError(HSIError):
    """A checkpoint is corrupt, unsafe, or does not fit the scene it is applied to."""
