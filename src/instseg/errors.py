"""instseg's exceptions: each message says what is wrong, where (file:line) and how to fix it."""

from __future__ import annotations


class InstsegError(Exception):
    """Base class: the CLI prints the message and exits 1, without a traceback."""


class DatasetError(InstsegError):
    """The dataset (data.yaml, labels, images, COCO JSON) cannot be used as it is."""


class ConversionError(InstsegError):
    """A conversion cannot be done without losing data; the message says what and where."""


class WeightsError(InstsegError):
    """A checkpoint or pretrained weight file is missing, unreadable or does not fit the model."""


class BackendUnavailable(InstsegError):
    """An optional framework is not installed; the message gives the install command."""


class TrainingError(InstsegError):
    """Training cannot continue (e.g. the loss became NaN); the last good checkpoint is kept."""
