"""sotag: StackOverflow tag suggestion. The model and its domain, shared by every stage."""

__version__ = "0.1.0"
