"""Image plugin (in progress, issue 5)."""
