"""Export and import of outputs with their recipes."""
