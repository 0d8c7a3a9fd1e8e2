"""The reference suite's own code, outside the `scaling` package: the findings table against the
literature (`findings`, with the literature's claims and numbers as data in literature.toml) and
the counting baselines added to finished studies' tables (`backfill`). These modules import
scaling; scaling never imports them (tests/test_imports.py). Run from the repository root:
`python -m studies.findings --root . --check README.md`, `python -m studies.backfill ...`."""
