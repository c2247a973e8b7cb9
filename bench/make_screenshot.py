"""The README's screenshot: the report of the public snapshot, made by the project's own code.

Equivalent to ``joulelens import mlenergy SNAPSHOT`` followed by
``joulelens report -o report.html --screenshot docs/img/report.png``, in a temporary store so
it does not touch yours. Needs Debian's chromium and chromium-driver.

    python bench/make_screenshot.py [--snapshot DIR] [--out docs/img/report.png] [--tab tradeoff]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from joulelens.ingest.mlenergy_leaderboard import read_leaderboard
from joulelens.report import write_report
from joulelens.report.browser import screenshot
from joulelens.store import Store

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--snapshot", type=Path, default=REPO.parent / "shared/data/mlenergy-leaderboard-v3"
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs/img/report.png")
    parser.add_argument("--tab", default="tradeoff")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=960)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "store")
        store.put_many(read_leaderboard(args.snapshot))
        html = write_report(store, Path(tmp) / "report.html")
        screenshot(html, args.out, tab=args.tab, width=args.width, height=args.height)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
