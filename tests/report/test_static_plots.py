"""Static plots: PNGs decode to the expected size and are not blank; SVGs hold labels and data."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from joulelens.errors import AnalysisError, InputError
from joulelens.report import static_plots
from joulelens.store import Store


def read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        assert img.format == "PNG"
        return np.asarray(img.convert("RGB"))


def assert_not_blank(pixels: np.ndarray) -> None:
    # A blank figure is one colour; a real plot has lines, markers and text in several colours.
    flat = pixels.reshape(-1, 3)
    colours = np.unique(flat[:: max(1, len(flat) // 50_000)], axis=0)
    assert len(colours) > 20
    assert (flat != 255).any(axis=1).mean() > 0.02  # more than 2% of pixels carry ink


def test_frontier_png(report_store: Store, tmp_path: Path) -> None:
    out = static_plots.plot_frontier(
        report_store.query(), "lm-arena-chat", "Model A", tmp_path / "f.png", deadline_ms=20.0
    )
    pixels = read_png(out)
    assert pixels.shape == (750, 1200, 3)  # 8 x 5 in at 150 dpi
    assert_not_blank(pixels)
    # The red deadline line and star are drawn (pure-ish red pixels exist).
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert red.sum() > 200


def test_frontier_svg_has_labels_and_series(report_store: Store, tmp_path: Path) -> None:
    out = static_plots.plot_frontier(
        report_store.query(), "lm-arena-chat", "org/model-a", tmp_path / "f.svg", deadline_ms=20.0
    )
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for text in ("median ITL (ms)", "energy per token (J)", "H100 x1", "B200 x1", "frontier"):
        assert text in svg, text
    assert "min energy ≤ deadline (batch 128, B200 x1)" in svg
    assert len(re.findall(r"<path ", svg)) > 20


def test_energy_vs_batch_png(report_store: Store, tmp_path: Path) -> None:
    out = static_plots.plot_energy_vs_batch(
        report_store.query(), "lm-arena-chat", "Model A", tmp_path / "b.png"
    )
    pixels = read_png(out)
    assert pixels.shape == (937, 1500, 3)
    assert_not_blank(pixels)


def test_energy_vs_batch_svg_panels(report_store: Store, tmp_path: Path) -> None:
    svg = static_plots.plot_energy_vs_batch(
        report_store.query(), "lm-arena-chat", "Model A", tmp_path / "b.svg"
    ).read_text()
    for text in ("energy per token (J)", "tokens/s", "median ITL (ms)", "average power (W)"):
        assert text in svg, text
    assert svg.count("batch size") >= 4


def test_task_distribution_svg(public_store: Store, tmp_path: Path) -> None:
    svg = static_plots.plot_task_distribution(public_store.query(), tmp_path / "t.svg").read_text()
    for text in ("gpqa", "lm-arena-chat", "image-chat", "energy per response (J)"):
        assert text in svg, text
    assert "text-to-video" not in svg  # diffusion has no tokens


def test_diffusion_png(public_store: Store, tmp_path: Path) -> None:
    pixels = read_png(static_plots.plot_diffusion(public_store.query(), tmp_path / "d.png"))
    assert pixels.shape[0] > 500 and pixels.shape[1] > 1500
    assert_not_blank(pixels)


def test_timeline_png_and_svg(report_store: Store, tmp_path: Path) -> None:
    png = static_plots.plot_timeline(report_store, "own-measured", tmp_path / "t.png")
    pixels = read_png(png)
    assert pixels.shape[1] == 1200
    assert_not_blank(pixels)
    svg = static_plots.plot_timeline(report_store, "own", tmp_path / "t.svg").read_text()
    for text in (
        "power (W)",
        "temperature (°C)",
        "running batch",
        "KV-cache usage",
        "steady state",
    ):
        assert text in svg, text
    assert "energy_joules" not in svg


def test_timeline_of_imported_run_is_a_clear_error(report_store: Store, tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match=r"no timeline\.parquet"):
        static_plots.plot_timeline(report_store, "llm-H100-8", tmp_path / "t.png")
    assert not (tmp_path / "t.png").exists()


def test_bad_inputs(report_store: Store, tmp_path: Path) -> None:
    records = report_store.query()
    with pytest.raises(InputError, match=r"\.png or \.svg"):
        static_plots.plot_frontier(records, "lm-arena-chat", "Model A", tmp_path / "f.jpg")
    with pytest.raises(InputError, match="no model matching"):
        static_plots.plot_frontier(records, "lm-arena-chat", "nothing", tmp_path / "f.png")
    with pytest.raises(InputError, match="no runs for task"):
        static_plots.plot_frontier(records, "nope", "Model A", tmp_path / "f.png")
    with pytest.raises(InputError, match="matches 2 models"):
        static_plots.plot_frontier(records, "lm-arena-chat", "a", tmp_path / "f.png")
