"""The bottom layer: what meters, measurement, engines and the store all need.

Kept to the standard library, numpy-free and fast to import: the clock every event and
reading is stamped with, atomic file writes, timeline series names, the short-window rule,
and how per-device energy adds up per boundary.
"""
