"""Device-side command-line entry points (`edge-run`); numpy-only at import."""
