"""The two exceptions trajspin raises on purpose (re-exported as ``trajspin.InputError`` etc.).

Every layer imports them from here, so no module needs the model just to report an error.
"""

__all__ = ["InputError", "NumericalError"]


class InputError(ValueError):
    """Bad user input, reported in one line before any work starts."""


class NumericalError(RuntimeError):
    """A solver produced a result that is not finite or not physical; it is not returned."""
