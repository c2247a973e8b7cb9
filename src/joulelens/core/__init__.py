"""The bottom layer: what meters, measurement, engines and the store all need.

Only the standard library and :mod:`joulelens.records` below it, so it stays fast to import:
the clock every event and reading is stamped with, atomic file writes, timeline series
names, energy over a window and the short-window rule, how per-device energy adds up per
boundary, and idle power.
"""
