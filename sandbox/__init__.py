"""The marketplace sandbox: plays Microsoft (Fulfillment API, Entra ID, webhook calls) for make dev
and the tests."""
