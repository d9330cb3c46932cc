"""What the runner (platformkit.run) needs to start any reporting process."""
import sys

from platformkit import contract
from platformkit.run import Consumer, ServiceDescription

from .stores import stores
from . import service
from .api import catalogue, targets, views
from .dashboard import add_dashboard
from .periodic import service as periodic_service
from .periodic.api import periodic
from .periodic.store import STEPS


def _projector() -> None:
    from .projector import main
    main()


def _rebuild(argv: list[str]) -> None:
    from .rebuild import main
    sys.argv = ["python -m platformkit.run job reporting rebuild", *argv]
    main()


DESCRIPTION = ServiceDescription(
    name=service.SERVICE,
    summary="Attainment views rolled up the org hierarchy, built from every service's events.",
    blueprints=(views, targets, catalogue, periodic),
    # the targets' index and the active generation's collections; the periodic reports' indexes
    setup=(service.setup, periodic_service.setup),
    path_scope=lambda view_args: service.path_scope(view_args, stores()),
    extend_app=add_dashboard,
    # The projector switches generations itself (a rebuilt one becoming active): its own loop.
    consumers=(Consumer("projector", main=_projector),),
    jobs={"rebuild": _rebuild},
    # the periodic reports' step documents carry their events (services/reporting/periodic/store.py)
    relay_routes={STEPS: contract.REPORTING_EVENTS},
)
