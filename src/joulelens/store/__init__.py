"""The embedded run store: run files are the truth, a DuckDB catalog indexes them."""

from joulelens.store.store import STORE_ENV, RunFilter, Store, default_store_dir

__all__ = ["STORE_ENV", "RunFilter", "Store", "default_store_dir"]
