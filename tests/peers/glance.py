"""pytest fixtures for the real glance peer (filled in by the provider work)."""
