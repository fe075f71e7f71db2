"""SPEC §3a aggregations: the definition language and its incremental engine."""
