"""Persistence: the Store protocol and its backends. SQL lives in this package only."""

from tasksd.store.base import Store, open_store

__all__ = ["Store", "open_store"]
