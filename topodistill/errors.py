"""Errors that the stage scripts turn into a clear message and a non-zero exit."""


class TopoDistillError(Exception):
    """Base class: an error caused by the user's input, reported without a traceback."""


class ConfigError(TopoDistillError):
    """A parameter in params.yaml is missing, of the wrong type or out of range."""


class DataError(TopoDistillError):
    """An input data file is missing, empty or malformed."""


class TrainingError(TopoDistillError):
    """Training diverged (NaN/inf loss) or cannot proceed."""
