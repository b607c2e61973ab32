"""Web helpers for server-rendered pages: sessions, CSRF, security headers, templates."""
