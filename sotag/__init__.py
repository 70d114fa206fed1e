"""The `sotag` command: gathers the sub-commands of the registry and every stage (see `sotag.cli`)."""
