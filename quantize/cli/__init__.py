"""Host-side command-line entry points (`edge-build`)."""
