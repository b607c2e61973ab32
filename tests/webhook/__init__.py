"""Tests of the webhook path: token validation, the queue adapters and the HTTP endpoint."""
