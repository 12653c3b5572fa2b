"""Upscale plugin (in progress, issue 3)."""
