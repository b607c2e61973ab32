"""The publisher's side of the Microsoft commercial marketplace SaaS Fulfillment API v2.

Layers, bottom to top (imports only point down):
- `shared.domain`: pure rules (subscription states, transitions, publisher policy, seats); no I/O.
- adapters: `shared.fulfillment` (Microsoft's API), `shared.storage` (Table Storage), `shared.queueing`
  (Service Bus), `shared.identity` (tokens).
- `shared.entrypoints`: what the Azure Functions triggers in `function_app.py` call.
"""
