"""Text plugin: drafting with a local language model."""
