"""Tests of seat licensing: the pure seat rules and the seat, user and admin stores against Azurite."""
