"""Built-in Creative Studio plugins (one folder each, with a plugin.toml)."""
