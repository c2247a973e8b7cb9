"""Write the public ML.ENERGY rows gpu_validate.py compares with (run where ../shared exists).

The GPU machine has no copy of ``../shared``, so the few rows it needs travel in the repo:
ML.ENERGY leaderboard v3, Llama 3.1 8B Instruct on lm-arena-chat, one H100, vLLM.
``tests/meters/test_gpu_validate.py`` checks the file still matches the shared data.

    python bench/data/make_mlenergy_reference.py
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "mlenergy-leaderboard-v3"
SOURCE = "models/meta-llama__Llama-3.1-8B-Instruct__lm-arena-chat.json"
OUT = Path(__file__).with_name("mlenergy_v3_h100_llama31_8b_lm_arena_chat.json")
FIELDS = (
    "max_num_seqs",
    "energy_per_token_joules",
    "avg_power_watts",
    "median_itl_ms",
    "avg_batch_size",
    "output_throughput_tokens_per_sec",
    "avg_output_len",
)


def reference_rows(shared: Path = SHARED) -> dict[str, object]:
    index = json.loads((shared / "index.json").read_text())
    data = json.loads((shared / SOURCE).read_text())
    rows = [
        {k: c[k] for k in FIELDS}
        for c in data["configurations"]
        if c["gpu_model"] == "H100" and c["num_gpus"] == 1
    ]
    return {
        "source": f"ML.ENERGY leaderboard v3 ({index['last_updated']}), ../shared/data/"
        f"mlenergy-leaderboard-v3/{SOURCE}",
        "model_id": data["model_id"],
        "task": data["task"],
        "gpu_model": "H100",
        "num_gpus": 1,
        "engine": "vLLM",
        "rows": sorted(rows, key=lambda r: r["max_num_seqs"]),
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(reference_rows(), indent=1) + "\n")
    print(f"wrote {OUT}")
