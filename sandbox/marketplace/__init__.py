"""Microsoft's side of SaaS subscriptions: purchases, the R31 state machine and operations.

Import each name from the module that owns it:

- `service`: `Marketplace`, the thread-safe object the Fulfillment API routes, the control API and the tests
  call;
- `operations`: `OperationDesk`, operations from start to end (the change window, webhooks, answers);
- `rules`: the pure rules (what may be bought, activated, changed; term dates);
- `records`: subscriptions and operations as Microsoft keeps them, and their wire form;
- `purchases`: new subscriptions and the purchase tokens that lead to the landing page;
- `ledger` and `state_file`: the state behind one lock, and the JSON file that keeps it across restarts;
- `settings`: `SandboxSettings`, the knobs of the simulated Microsoft;
- `errors`: what the Fulfillment API refuses with, and its HTTP status.
"""
