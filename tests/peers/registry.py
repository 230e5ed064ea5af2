"""pytest fixtures for the real registry peer (filled in by the provider work)."""
