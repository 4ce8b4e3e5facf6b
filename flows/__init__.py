"""Prefect flows, one module per flow; each only wires tasks together."""
