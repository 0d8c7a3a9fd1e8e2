"""Reports: tidy tables and markdown computed from a results table and its fits (no refitting)."""
