"""refbench: exact, fast evaluation for referring video segmentation, temporal grounding and RES.

Importing this package is cheap: torch and the heavy libraries load only where they are used.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
