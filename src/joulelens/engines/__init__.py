"""Inference engines: in-process (transformers, diffusers) and served (vLLM lifecycle).

Importing this package is cheap; torch, transformers and diffusers load only when an engine
is built. See ``docs/engines.md`` for the engine protocol and the model forms accepted.
"""
