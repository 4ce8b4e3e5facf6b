"""One module per outside system; each returns canonical frames (revops.frames)."""
