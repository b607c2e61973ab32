"""Buyer sign-in on the landing page: Entra ID code flow, ID token checks, confirmation."""
