"""The Qt user interface: the only package that creates widgets."""
