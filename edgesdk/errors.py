"""Typed errors for everything a user can cause.

Every message answers: what failed, on what (file, node, host), and what to do next.
The CLI prints ``str(err)`` on one line (plus ``err.hint`` when set) and exits non-zero;
``--debug`` / ``EDGESDK_DEBUG=1`` shows the traceback.

Internal bugs raise :class:`EdgeSdkInternalError`, which is deliberately *not* an
:class:`EdgeSdkError`: those must surface with a traceback.
"""

from __future__ import annotations


class EdgeSdkError(Exception):
    """Root of every error a user can cause and fix.

    Args:
        message: one line saying what failed and on what.
        hint: what to do next (optional; the CLI prints it after the message).
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class RecipeError(EdgeSdkError, ValueError):
    """A recipe is missing, unreadable, or does not validate."""

    exit_code = 2


class ArtifactNotFound(EdgeSdkError, FileNotFoundError):
    """A model, weights, image folder or other input file does not exist."""

    exit_code = 2


class ModelFormatError(EdgeSdkError, ValueError):
    """A model file exists but is corrupt, truncated or inconsistent (cfg vs weights)."""

    exit_code = 2


class GraphError(EdgeSdkError):
    """A graph pass cannot be applied, or an exported model fails its parity check."""


class ParityError(GraphError):
    """The exported model differs from the original beyond the tolerance."""


class DatasetError(EdgeSdkError, ValueError):
    """An image/label folder is empty, unreadable or malformed."""

    exit_code = 2


class PruneError(EdgeSdkError):
    """Slimming cannot produce a valid model."""


class CalibrationError(EdgeSdkError):
    """int8 calibration failed or its inputs are unusable."""


class RemoteError(EdgeSdkError):
    """Talking to a device failed."""


class ConnectionFailed(RemoteError):
    """The device cannot be reached."""


class AuthFailed(RemoteError):
    """The device refused our credentials."""


class HostKeyMismatch(RemoteError):
    """The device's host key is unknown or changed."""


class UnknownHostKey(HostKeyMismatch):
    """The device's host key is in no known_hosts file yet (first connection)."""


class ChangedHostKey(HostKeyMismatch):
    """The device's host key differs from the recorded one (re-flashed device, or an attack)."""


class CommandTimeout(RemoteError):
    """A command on the device did not finish in time."""


class CommandFailed(RemoteError):
    """A command on the device exited non-zero where success was required."""


class InventoryError(EdgeSdkError, ValueError):
    """The device inventory (devices.yaml) or a device entry is invalid."""

    exit_code = 2


class UnknownDevice(InventoryError):
    """No device in the inventory, in ~/.ssh/config, or built in, has this name."""


class DeviceError(EdgeSdkError):
    """The agent on the device reported a failure (engine build, runtime)."""


class MissingDependencyError(EdgeSdkError, ImportError):
    """An optional package is needed for this feature; the message names the extra."""

    exit_code = 3


class EdgeSdkInternalError(Exception):
    """A bug in edgesdk. Not a subclass of :class:`EdgeSdkError` on purpose."""
