"""One module per API area; each exposes a `router` of thin routes."""
