"""Statistics on tidy tables, with no study in them: `paired` (the paired contrast over blocks,
Holm's adjustment, Fieller's ratio interval). Imports only `scaling.table` and
`scaling.errors` of the package (tests/test_imports.py)."""
