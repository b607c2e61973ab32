"""The seam where the publisher's own SaaS app provisions a tenant before Microsoft starts billing (R14).

`PROVISIONING_HOOK="package.module:function"` names a callable `(Subscription) -> bool`: True when the
account is ready (activation follows), False when it is still being set up (the activation message is
delivered again later). It must be idempotent: a redelivered message calls it again. By default there is
nothing to provision and activation follows at once.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache

from shared.config import ConfigurationError
from shared.domain.subscription import Subscription

ProvisioningHook = Callable[[Subscription], bool]


def provision_nothing(subscription: Subscription) -> bool:
    return True


@cache
def load_hook(spec: str) -> ProvisioningHook:
    if not spec:
        return provision_nothing
    module_name, _, attribute = spec.partition(":")
    try:
        hook = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"PROVISIONING_HOOK {spec!r} cannot be loaded: {exc}") from exc
    if not callable(hook):
        raise ConfigurationError(f"PROVISIONING_HOOK {spec!r} is not callable")
    loaded: ProvisioningHook = hook  # its signature is the hook author's promise: only callable is checked
    return loaded
