"""Tests written to kill surviving mutants of the core modules (see docs/mutation.md)."""
