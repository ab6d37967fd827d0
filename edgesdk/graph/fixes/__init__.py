"""Named graph fixes. Importing this package registers every fix."""

from edgesdk.graph.fixes import basic  # noqa: F401

__all__: list[str] = []
