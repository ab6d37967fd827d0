"""Loading an ONNX file, with errors that say which file is wrong and why."""

from __future__ import annotations

from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from edgesdk.errors import ArtifactNotFound, ModelFormatError

_PROTO_LIMIT = 2**31 - 1  # protobuf cannot serialise more; check such models by path


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def load_onnx(path: Path) -> onnx.ModelProto:
    """Load and check an ONNX model, with its external data (files named relative to it).

    Args:
        path: the ``.onnx`` file; external tensor data is read from the paths the model
            records, relative to this file's folder.

    Returns:
        The model, external data loaded in memory, after ``onnx.checker.check_model``.

    Raises:
        ArtifactNotFound: ``path`` does not exist.
        ModelFormatError: the file is not a protobuf ModelProto (corrupt or truncated), its
            external data is missing or short, it has no graph, or the checker refuses it.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactNotFound(f"ONNX model {path} does not exist")
    try:
        model = onnx.load(str(path))
    except onnx.checker.ValidationError as err:  # external data missing or outside the folder
        raise ModelFormatError(f"{path}: cannot load its external data: {_first_line(err)}") from err
    except (OSError, ValueError) as err:  # external data truncated or unreadable
        raise ModelFormatError(f"{path}: cannot load its external data: {_first_line(err)}") from err
    except DecodeError as err:  # not an ONNX file, or truncated
        raise ModelFormatError(
            f"{path} is not a valid ONNX file ({_first_line(err)}); is it truncated or another format?"
        ) from err
    if not model.HasField("graph") or not model.graph.output:
        raise ModelFormatError(f"{path}: parsed, but holds no graph with outputs; is it an ONNX model?")
    try:
        if model.ByteSize() < _PROTO_LIMIT:
            onnx.checker.check_model(model)
        else:
            onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as err:
        raise ModelFormatError(f"{path} fails the ONNX checker: {_first_line(err)}") from err
    return model
