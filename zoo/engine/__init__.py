"""Plain functions that train, evaluate, predict and export; the CLI only wires them up."""
