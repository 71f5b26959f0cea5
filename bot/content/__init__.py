"""Admin-edited content: schema, loading with line-numbered errors, cross-file checks."""
