"""Loading and validating the YAML files under ``mappings/`` into domain objects."""
