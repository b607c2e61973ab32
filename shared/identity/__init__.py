"""Identity: validating Microsoft's webhook tokens and signing buyers in with Entra ID."""
