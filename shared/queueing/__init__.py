"""Queue adapters: the message contract, Azure Service Bus, and the dev host's local stand-in."""
