"""Analysis over stored runs: summaries, diagnosis, the paper's study, planning."""
