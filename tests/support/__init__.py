"""Test support: real local servers (Azurite, the marketplace sandbox) started on free loopback ports."""
