"""Small compatibility layers for third-party libraries (no Qt here)."""
