"""The studio's model layer. Nothing in here imports Qt (tests/test_layers.py checks it)."""
