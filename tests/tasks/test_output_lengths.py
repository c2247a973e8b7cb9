"""Output-length distributions: sampling follows the histogram; store first, then packaged."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

from joulelens.errors import InputError
from joulelens.records import Histogram
from joulelens.tasks import OutputLengthDistribution, get_task
from joulelens.tasks.output_lengths import (
    derive_task_quantiles,
    for_task,
    from_store,
    packaged,
    packaged_tasks,
)

KS_CRITICAL_1PCT = 1.63  # Kolmogorov-Smirnov critical value x sqrt(n) at alpha = 0.01


def ks_statistic(samples: np.ndarray, dist: OutputLengthDistribution) -> float:
    """Largest gap between the empirical CDF and P(L <= k) over the integer support.

    Lengths are ceil(X) with X continuous, so P(L <= k) = F(k) exactly at integers.
    """
    support = np.arange(1, int(samples.max()) + 1)
    empirical = np.searchsorted(np.sort(samples), support, side="right") / len(samples)
    return float(np.max(np.abs(empirical - dist.cdf_at(support))))


def test_samples_follow_a_histogram() -> None:
    hist = Histogram(bins=[0, 10, 20, 40, 100], counts=[5, 30, 40, 25])
    dist = OutputLengthDistribution.from_histogram(hist)
    samples = dist.sample(4000, np.random.default_rng(1))
    assert samples.min() >= 1 and samples.max() <= 100
    assert ks_statistic(samples, dist) < KS_CRITICAL_1PCT / np.sqrt(len(samples))
    # bin shares match the counts
    shares = np.histogram(samples, bins=[0, 10, 20, 40, 100])[0] / len(samples)
    assert np.allclose(shares, np.array(hist.counts) / hist.total, atol=0.03)
    assert dist.mean_tokens == pytest.approx(0.05 * 5 + 0.3 * 15 + 0.4 * 30 + 0.25 * 70)


def test_sampling_is_seeded_and_capped() -> None:
    dist = packaged("lm-arena-chat")
    a = dist.sample(50, np.random.default_rng(3))
    b = dist.sample(50, np.random.default_rng(3))
    assert np.array_equal(a, b)
    capped = dist.sample(2000, np.random.default_rng(3), cap_tokens=64)
    assert capped.max() == 64 and (capped == 64).mean() > 0.5


def test_mixtures_weigh_each_histogram() -> None:
    low = Histogram(bins=[0, 10], counts=[100])
    high = Histogram(bins=[90, 100], counts=[1])
    mixed = OutputLengthDistribution.from_histograms([low, high], "t")
    assert mixed.cdf_at([10])[0] == pytest.approx(0.5)
    weighted = OutputLengthDistribution.from_histograms([low, high], "t", weights=[3, 1])
    assert weighted.cdf_at([10])[0] == pytest.approx(0.75)


def test_invalid_distributions_are_rejected() -> None:
    with pytest.raises(InputError):
        OutputLengthDistribution((0.0, 5.0, 3.0), (0.0, 0.5, 1.0), "bad")
    with pytest.raises(InputError):
        OutputLengthDistribution((0.0, 5.0), (0.0, 0.9), "bad")
    with pytest.raises(InputError):
        OutputLengthDistribution.from_histograms([Histogram(bins=[0, 1], counts=[0])], "empty")


def test_packaged_defaults_cover_the_llm_tasks_and_are_ordered() -> None:
    assert set(packaged_tasks()) == {
        "lm-arena-chat",
        "gpqa",
        "sourcegraph-fim",
        "image-chat",
        "video-chat",
    }
    gpqa, chat = packaged("gpqa"), packaged("lm-arena-chat")
    # reasoning answers are about ten times longer than chat answers (the paper's finding)
    assert 5 < gpqa.mean_tokens / chat.mean_tokens < 20
    assert gpqa.lengths_tokens[-1] == 32768 and chat.lengths_tokens[-1] == 4096
    with pytest.raises(InputError, match="known"):
        packaged("text-to-image")


def test_packaged_defaults_match_the_public_snapshot(public_records) -> None:
    text = resources.files("joulelens.tasks").joinpath("data", "output_lengths.json").read_text()
    stored = json.loads(text)["quantiles_tokens"]
    derived = derive_task_quantiles(public_records)
    assert set(derived) == set(stored)
    for task, quantiles in derived.items():
        assert quantiles == stored[task], task


def test_store_histograms_win_over_the_packaged_default(tmp_store, make_record) -> None:
    hist = Histogram(bins=[1, 5, 9], counts=[10, 30])
    tmp_store.put(
        make_record(run_id="a", task="gpqa", model_id="org/m", output_length_distribution=hist)
    )
    other = Histogram(bins=[1000, 2000], counts=[5])
    tmp_store.put(
        make_record(run_id="b", task="gpqa", model_id="org/other", output_length_distribution=other)
    )

    own = from_store(tmp_store, "gpqa", model_id="org/m")
    assert own is not None and own.lengths_tokens == (1.0, 5.0, 9.0) and "org/m" in own.source
    pooled = for_task("gpqa", tmp_store)
    assert pooled.cdf_at([9])[0] == pytest.approx(0.5)  # two models, equal weight
    assert "2 models" in pooled.source
    # no histogram for this task in the store: packaged default
    assert for_task("lm-arena-chat", tmp_store).source.startswith("packaged")
    assert get_task("gpqa").output_lengths(tmp_store, "org/m").lengths_tokens == (1.0, 5.0, 9.0)
