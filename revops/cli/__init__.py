"""The `revops` command line: a leaf over the flows (entry point `revops.cli.main:app`)."""
