"""ALPR Workbench: an open, auditable workbench for a city's license plate reader program.

Importing the package is cheap: heavy libraries (torch, panel, holoviews) are imported
only by the modules that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
