"""The embedded run store: run files are the truth, a DuckDB catalog indexes them."""

from joulelens.store.filters import RunFilter
from joulelens.store.store import STORE_ENV, Store, default_store_dir
from joulelens.store.writes import StoreInfo, WriteCounts

__all__ = ["STORE_ENV", "RunFilter", "Store", "StoreInfo", "WriteCounts", "default_store_dir"]
