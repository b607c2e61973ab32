"""Tests of the marketplace sandbox (Fulfillment API, webhooks, faults, control API, server)."""
