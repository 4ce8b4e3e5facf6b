"""Prefect tasks and the pure domain logic (plain functions on frames) they call."""
