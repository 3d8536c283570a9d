"""flotta's components, one package each, each an actor over runtime/ (see ARCHITECTURE.md)."""
