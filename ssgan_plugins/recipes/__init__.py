"""Recipes that depart from the paper where measurement shows they train better (docs/training.md)."""
