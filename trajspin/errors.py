"""The two exceptions trajspin raises on purpose (re-exported as ``trajspin.InputError`` etc.).

Every layer imports them from here, so no module needs the model just to report an error.
"""

__all__ = ["InputError", "NumericalError"]


class InputError(ValueError):
    """Bad user input, reported in one line before any work starts.

    Parameters
    ----------
    message : str
        One line naming the input, the value and what would be accepted.
    """


class NumericalError(RuntimeError):
    """A solver produced a result that is not finite or not physical; it is not returned.

    Parameters
    ----------
    message : str
        Which check failed (non-finite entries, ``|<J_i^z>| > N_i/2``, populations not summing
        to 1).
    """
