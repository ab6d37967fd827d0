"""Named graph fixes. Importing this package registers every fix."""

from edgesdk.graph.fixes import basic, dtypes, nms, resize, shapes  # noqa: F401

__all__: list[str] = []
