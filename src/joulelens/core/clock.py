"""The one clock every event and reading is stamped with.

Request events and meter samples must share a clock so a steady-state window cut from
request events can be applied to energy readings; ``time.monotonic`` never jumps with NTP.
"""

from __future__ import annotations

import time

now_s = time.monotonic
# Seconds between distinct readings of ``now_s`` (1e-9 on Linux, ~0.016 on some systems).
RESOLUTION_S = time.get_clock_info("monotonic").resolution
