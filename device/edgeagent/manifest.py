"""Read a bundle's ``manifest.json`` with the standard library and check the fields the agent uses."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

from edgeagent.events import BadInput

SUPPORTED_FORMATS = (1,)


class Manifest:
    """A validated view of ``manifest.json`` (only what the agent needs)."""

    def __init__(self, data: Dict[str, Any], root: str) -> None:
        self.data = data
        self.root = root
        self.recipe: Dict[str, Any] = data["recipe"]

    @property
    def name(self) -> str:
        return str(self.recipe["name"])

    @property
    def input_shape(self) -> List[int]:
        return [int(v) for v in self.recipe["input"]["shape"]]

    @property
    def input_name(self) -> Optional[str]:
        return self.recipe["input"].get("name")

    @property
    def preprocess(self) -> Dict[str, Any]:
        return dict(self.recipe["preprocess"])

    @property
    def postprocess(self) -> Dict[str, Any]:
        return dict(self.recipe["postprocess"])

    @property
    def build(self) -> Dict[str, Any]:
        return dict(self.recipe["build"])

    def files(self, role: str) -> List[Dict[str, Any]]:
        """File entries with ``role`` (e.g. ``model``, ``calibration_image``)."""
        return [entry for entry in self.data["files"] if entry["role"] == role]

    def file_path(self, entry: Dict[str, Any]) -> str:
        return os.path.join(self.root, "files", entry["sha256"])

    def model_entry(self) -> Dict[str, Any]:
        models = self.files("model")
        if len(models) != 1:
            raise BadInput(f"manifest in {self.root} has {len(models)} model files, expected 1")
        return models[0]


_REQUIRED = {
    "recipe": ("name", "input", "preprocess", "postprocess", "build"),
}


def load_manifest(bundle_dir: str) -> Manifest:
    """Load and check ``<bundle_dir>/manifest.json``.

    Raises:
        BadInput: missing, not JSON, unsupported format, or a required field absent.
    """
    path = os.path.join(bundle_dir, "manifest.json")
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read().decode("utf-8"))
    except FileNotFoundError:
        raise BadInput(f"no manifest.json in {bundle_dir}", "deploy the recipe again") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise BadInput(f"{path} is not valid JSON: {err}", "deploy the recipe again") from err
    if not isinstance(data, dict) or data.get("bundle_format") not in SUPPORTED_FORMATS:
        raise BadInput(
            "{}: bundle_format {!r} is not supported by this agent (supports {})".format(
                path, data.get("bundle_format") if isinstance(data, dict) else None, SUPPORTED_FORMATS
            ),
            "update edgesdk on the host, or redeploy so the matching agent is pushed",
        )
    for section, keys in _REQUIRED.items():
        block = data.get(section)
        if not isinstance(block, dict):
            raise BadInput(f"{path}: missing section {section!r}")
        for key in keys:
            if key not in block:
                raise BadInput(f"{path}: missing {section}.{key}")
    if not isinstance(data.get("files"), list):
        raise BadInput(f"{path}: missing file list")
    return Manifest(data, bundle_dir)
