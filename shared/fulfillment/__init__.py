"""Adapter for Microsoft's SaaS Fulfillment API v2: client, typed errors, lenient parsing, credentials."""
