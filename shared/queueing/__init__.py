"""Queue adapters: the message contract, Azure Service Bus, an in-memory queue, and the backend registry."""
