"""Alignment dose-response studies with small JAX transformers."""

__version__ = "0.1.0"
