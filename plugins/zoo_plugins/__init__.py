"""zoo's built-in plugins, written as an outside package would write them: they use zoo's public
API and implement its hooks, and registry.toml lists their modules."""
