"""Benchmarks (`python -m bench`): they measure and report figures. The only checks they make
decide whether a figure means anything: the naive baseline finds smartseg's members, SQLite
and PostgreSQL find the same ones, the bare loop makes smartseg's requests, a sync with
nothing changed makes no call."""
