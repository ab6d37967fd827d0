"""Slimming: structured channel pruning on ONNX graphs (issue #6).

Parts that do not know each other's insides (STYLE §2):

* :mod:`~edgesdk.slim.groups` — which channels must be cut together (coupling rules per op
  in :mod:`~edgesdk.slim.coupling` and :mod:`~edgesdk.slim.coupling_layout`);
* :mod:`~edgesdk.slim.criteria` — a score per channel (``l1``, ``bn``, ``random``, ...);
* :mod:`~edgesdk.slim.schedule` — how many channels each group keeps for a FLOPs target;
* :mod:`~edgesdk.slim.plan` — the serialisable plan (groups + kept channels);
* :mod:`~edgesdk.slim.handlers` / :mod:`~edgesdk.slim.apply` — slicing, per op type.
"""

from edgesdk.slim.apply import apply_masks, apply_plan
from edgesdk.slim.criteria import criterion_names, register_criterion
from edgesdk.slim.groups import ChannelAnalysis, ChannelGroup, Member, analyze, prepare
from edgesdk.slim.plan import GroupPlan, SlimPlan, make_plan

__all__ = [
    "ChannelAnalysis",
    "ChannelGroup",
    "GroupPlan",
    "Member",
    "SlimPlan",
    "analyze",
    "apply_masks",
    "apply_plan",
    "criterion_names",
    "make_plan",
    "prepare",
    "register_criterion",
]
