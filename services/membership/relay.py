"""python -m services.membership.relay: publishes membership's outbox to membership.events."""
from platformkit.relay import run_relay

from .service import RELAY_ROUTES, SERVICE

if __name__ == "__main__":
    run_relay(SERVICE, RELAY_ROUTES)
