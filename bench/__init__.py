"""Benchmarks: they measure and report; they assert nothing (tests do that)."""
