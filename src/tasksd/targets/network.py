"""Where push dispatch may connect: the rule lives in the model (``tasksd.model.network``),
since CreateTask checks it inside the store's transaction too; the sender imports it here."""

from tasksd.model.network import ANY_ADDRESS, TargetNetworks

__all__ = ["ANY_ADDRESS", "TargetNetworks"]
