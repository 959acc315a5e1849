"""DSMF insured-persons registration gateway."""
