"""Agents of the structured-products desk."""
