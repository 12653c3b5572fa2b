"""Creative Studio: local generative models for text, images, music and upscaling."""

__version__ = "0.1.0"
