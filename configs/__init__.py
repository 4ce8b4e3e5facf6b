"""The shipped YAML configs (package data); REVOPS_CONFIG_DIR points at a copy to override."""
