"""joulelens: measure, explain and plan the time and energy of generative-AI inference."""

__version__ = "0.1.0"
