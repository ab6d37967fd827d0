"""Plain result types shared by the decoders, NMS and the host's evaluation.

Conventions (everywhere in :mod:`edgeagent.vision`):
- images are HWC uint8 **BGR** as OpenCV reads them;
- network tensors are NCHW float32;
- boxes are ``xyxy`` float32 in **pixels** of the image space named by the function
  (``input`` = the network input, ``source`` = the original frame).
"""

from typing import NamedTuple, Optional

import numpy as np


class Detections(NamedTuple):
    """Detections for ONE image.

    Attributes:
        boxes: (N, 4) float32 xyxy pixels.
        scores: (N,) float32 in [0, 1].
        class_ids: (N,) int64 indices into the recipe's class names.
        landmarks: (N, K, 2) float32 pixels (face models: K = 5), or None.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    landmarks: Optional[np.ndarray] = None

    def __len__(self) -> int:  # number of detections, not tuple arity
        return int(self.boxes.shape[0])

    @staticmethod
    def empty(num_landmarks: int = 0) -> "Detections":
        """No detections (with a landmark array of K points if ``num_landmarks`` > 0)."""
        lm = np.zeros((0, num_landmarks, 2), np.float32) if num_landmarks else None
        boxes, scores = np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
        return Detections(boxes, scores, np.zeros((0,), np.int64), lm)

    def take(self, index: np.ndarray) -> "Detections":
        """Subset by an index or boolean mask."""
        lm = self.landmarks[index] if self.landmarks is not None else None
        return Detections(self.boxes[index], self.scores[index], self.class_ids[index], lm)
