from tests.gateway.webhook_receiver import receiver

__all__ = ["receiver"]
