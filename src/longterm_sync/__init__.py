"""longterm_sync: the experimenter's toolkit for the Long Term Study platform."""

__version__ = "0.1.0"
