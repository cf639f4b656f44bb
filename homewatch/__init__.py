"""homewatch: the command line (``homewatch``) and the one-machine demo that runs every part together."""

__version__ = "0.1.0"
