"""Webhook fan-out: from the events queue to each session's webhook URL, in WaGo's format."""
