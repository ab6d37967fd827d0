"""edgeagent: the program that runs on the device (Jetson or any machine with onnxruntime).

Python 3.8 compatible; needs only numpy and OpenCV (plus tensorrt and pycuda on a Jetson).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
