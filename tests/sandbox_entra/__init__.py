"""Tests of the sandbox Entra ID stand-in, its TLS material and its identities file."""
