"""Table Storage adapters: subscriptions, the operations inbox, the audit trail and the buyer side's."""
