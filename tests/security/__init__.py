"""Regression tests for the hardening classes: each test names the attack or defect it guards."""
