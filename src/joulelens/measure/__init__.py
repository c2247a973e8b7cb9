"""Measurement: turns engine request events and meter readings into run records."""
