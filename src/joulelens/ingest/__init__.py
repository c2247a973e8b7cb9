"""Importers: published ML.ENERGY results and raw ML.ENERGY Benchmark result directories."""
