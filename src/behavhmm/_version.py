"""Version of the behavhmm package."""

__version__ = "0.1.0"
