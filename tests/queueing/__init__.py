"""The queue adapters beyond sending: the operator's view of dead letters."""
