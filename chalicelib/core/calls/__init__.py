"""Calls: the call registry (DynamoDB), its state machine and the ICE/TURN configuration."""
