"""Progress bars: tqdm when shown, a silent stand-in otherwise (as in emcee's pbar)."""
from __future__ import annotations

__all__ = ["get_progress_bar"]


class _NoBar:
    def __init__(self, *args, **kwargs):
        pass

    def update(self, n=1):
        pass

    def set_postfix_str(self, s):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def get_progress_bar(display, total, desc="", unit="it", initial=0):
    """A tqdm bar over ``total`` steps (starting at ``initial``) if ``display``, else a no-op bar."""
    if not display:
        return _NoBar()
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, smoothing=0.1, initial=initial)
