"""sparsenest: nested shared-weight sparse models for energy-harvesting MCUs."""
__version__ = "0.1.0"
