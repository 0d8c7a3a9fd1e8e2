"""The former home of `scaling data` (now scaling.cli.data); it re-exports the command's
helpers for code that still imports them from here."""

from scaling.cli.data import export_world, load, row_batches

__all__ = ["export_world", "load", "row_batches"]
