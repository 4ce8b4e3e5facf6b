"""Prefect flows, one module per flow; each only wires tasks together."""

from revops.log_filters import install_log_filters

install_log_filters()
