"""Tests of the web foundations: templates, security headers, sessions, CSRF, and the layout in a browser."""
