"""Platform agents: those that serve every desk."""
