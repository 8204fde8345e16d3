"""A small least-recently-used cache owned by the module that fills it.

Tables built for a chain (trajectory tables, general-engine tables, Lanczos sector tables) are
kept here, keyed by the hashable chain and what else they depend on, instead of on the chain
object; at most ``maxsize`` entries stay alive.
"""
from __future__ import annotations

from collections import OrderedDict

__all__ = ["BoundedCache"]


class BoundedCache:
    """``get(key, make)``: the cached value of ``key``, built by ``make()`` on a miss.

    Parameters
    ----------
    maxsize : int
        Entries kept; the least recently used one is dropped beyond it.
    """

    def __init__(self, maxsize=4):
        self.maxsize = int(maxsize)
        self._items = OrderedDict()

    def get(self, key, make):
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = make()
        self._items[key] = value
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)
        return value

    def clear(self):
        self._items.clear()

    def __len__(self):
        return len(self._items)
