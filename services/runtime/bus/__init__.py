"""The message bus: one interface (`port.Bus`), an in-process transport and a RabbitMQ transport."""
