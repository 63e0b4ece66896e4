"""The model registry: registered models, versions, aliases and their history."""
