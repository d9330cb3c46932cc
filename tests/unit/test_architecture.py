"""The import rules of docs/architecture.md, read from the source with `ast` (nothing is imported):
a rule broken anywhere fails here, naming the file, the line and the import."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Libraries that talk to the outside world or shape HTTP: the adapters' and entrypoints' business.
DRIVERS = {"flask", "flask_smorest", "webargs", "werkzeug", "apispec", "gunicorn", "pymongo", "bson", "kafka",
           "marshmallow", "prometheus_client", "jwt", "openpyxl"}
WEB = {"flask", "flask_smorest", "webargs", "werkzeug", "apispec", "platformkit.web"}
# What a domain module may use from platformkit: the refusals, the envelope it raises events in, dates.
DOMAIN_PLATFORMKIT = {"platformkit", "platformkit.errors", "platformkit.envelope", "platformkit.clock",
                      "platformkit.contract"}  # the contract: topics, event types and `Event`
# entrypoints and wiring: the HTTP surface, process mains, and the description the runner composes
ENTRYPOINTS = {"api", "app", "relay", "consumer", "projector", "rebuild", "__main__", "schemas", "description",
               "dashboard"}
# The pure rules of reporting (its "domain"): the projection, the catalogue, the calendar.
# pure rules inside a reporting sub-package (periodic reports: forms and the workflow)
REPORTING_SUB_RULES = {("periodic", "forms"), ("periodic", "workflow")}
REPORTING_RULES = {"projection", "projection_training", "projection_welfare", "periods", "indicators"}
# Clients of the APIs (not services): they may reuse a service's pure rules, nothing else of it.
CLIENTS = {"demo"}
# Services in the one handler shape (handlers `(command, caller, stores)`, commands.py, stores.py).
SHAPED = {"membership", "training", "welfare", "reporting"}


def imports(path: Path, text: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file (or in `text` as if it were that
    file), relative ones resolved."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    if path.name == "__init__.py":
        package = ".".join(path.relative_to(ROOT).parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text() if text is None else text, str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from . import service` names a module too
            out.append((node.lineno, module))
            out += [(node.lineno, f"{module}.{alias.name}") for alias in node.names
                    if (ROOT / Path(*f"{module}.{alias.name}".split("."))).with_suffix(".py").exists()
                    or (ROOT / Path(*f"{module}.{alias.name}".split("."))).is_dir()]
    return out


def service_of(path: Path) -> str | None:
    parts = path.relative_to(ROOT).parts
    return parts[1] if parts[0] == "services" and len(parts) > 2 else None


def module_parts(path: Path) -> tuple[str, ...]:
    """The module path inside its service: ('domain',), ('projection', 'training'), ..."""
    return path.relative_to(ROOT / "services" / service_of(path)).with_suffix("").parts


def is_domain(path: Path) -> bool:
    parts = module_parts(path)
    if parts[0] in ("domain", "commands"):  # domain.py or a domain/ package; commands.py (pure verbs)
        return True
    if service_of(path) == "reporting" and tuple(parts[:2]) in REPORTING_SUB_RULES:
        return True
    return service_of(path) == "reporting" and parts[0] in REPORTING_RULES


def is_entrypoint(path: Path) -> bool:
    # a sub-package of a service (reporting's periodic/) keeps the same file names
    return module_parts(path)[0] in ENTRYPOINTS or module_parts(path)[-1] in ENTRYPOINTS


def top(module: str) -> str:
    return module.split(".")[0]


def within(module: str, names: set[str]) -> bool:
    return any(module == n or module.startswith(n + ".") for n in names)


def sources(*globs: str) -> list[Path]:
    return sorted(p for g in globs for p in ROOT.glob(g) if "__pycache__" not in p.parts)


SERVICE_FILES = [p for p in sources("services/*/**/*.py") if service_of(p) and service_of(p) not in CLIENTS]
PLATFORMKIT_FILES = sources("platformkit/**/*.py")


def broken(files: list[Path], rule) -> list[str]:
    return [f"{p.relative_to(ROOT)}:{line}: {module}" for p in files for line, module in imports(p)
            if rule(p, module)]


def domain_rule(p: Path, module: str) -> bool:
    """A domain module imports no driver, no web layer, no platformkit beyond DOMAIN_PLATFORMKIT, no
    other service, and of its own service only other pure rules."""
    if not is_domain(p):
        return False
    if top(module) in DRIVERS or within(module, WEB):
        return True
    if top(module) == "platformkit":
        return module not in DOMAIN_PLATFORMKIT
    if top(module) == "services":
        parts = module.split(".")
        if len(parts) < 2 or parts[1] != service_of(p):
            return True  # another service
        inner = parts[2:]
        return bool(inner) and not (inner[0] in ("domain", "commands")
                                    or (service_of(p) == "reporting" and inner[0] in REPORTING_RULES))
    return False


def handler_rule(p: Path, module: str) -> bool:
    """Handlers and adapters take plain data: no web layer, no entrypoint or HTTP schema of theirs."""
    if is_domain(p) or is_entrypoint(p):
        return False
    if within(module, WEB):
        return True
    own = f"services.{service_of(p)}"
    return within(module, {f"{own}.{e}" for e in ENTRYPOINTS})


def cross_service_rule(p: Path, module: str) -> bool:
    """Services talk through events and HTTP only."""
    return top(module) == "services" and module != "services" and module.split(".")[1] != service_of(p)


def test_the_rules_see_every_layer():
    """The test reads what it means to: every service's domain, handlers and entrypoints."""
    by_kind = {"domain": set(), "handlers": set(), "entrypoints": set()}
    for p in SERVICE_FILES:
        kind = "domain" if is_domain(p) else "entrypoints" if is_entrypoint(p) else "handlers"
        by_kind[kind].add(service_of(p))
    assert by_kind["domain"] >= {"membership", "training", "welfare", "reporting"}
    assert by_kind["handlers"] >= {"membership", "training", "welfare", "reporting"}
    assert by_kind["entrypoints"] >= {"membership", "training", "welfare", "reporting"}
    # and the import reader resolves relative imports, so that `from . import domain` is seen
    found = imports(ROOT / "services/membership/x.py", "\n\nfrom . import domain")
    assert (3, "services.membership") in found and (3, "services.membership.domain") in found


def test_domain_imports_no_driver_no_web_no_handler_and_no_other_service():
    assert not broken(SERVICE_FILES, domain_rule), "domain modules must stay pure (docs/architecture.md)"


def test_handlers_and_adapters_import_no_web_layer_and_no_entrypoint():
    assert not broken(SERVICE_FILES, handler_rule), "HTTP stays in api.py/schemas.py (docs/architecture.md)"


def test_shaped_handlers_import_no_driver():
    """The handlers and commands of a shaped service reach the database only through stores.py."""
    files = [ROOT / "services" / svc / name for svc in sorted(SHAPED) for name in ("service.py", "commands.py")]
    assert all(p.exists() for p in files)
    assert not broken(files, lambda p, module: top(module) in DRIVERS or within(module, WEB)), \
        "handlers take (command, caller, stores): no driver in service.py or commands.py"


def test_no_service_imports_another_service():
    assert not broken(SERVICE_FILES, cross_service_rule), "services talk through events and HTTP only"


def test_clients_reuse_only_pure_rules_of_a_service():
    clients = [p for p in sources("services/*/**/*.py") if service_of(p) in CLIENTS]
    assert clients

    def rule(p: Path, module: str) -> bool:
        parts = module.split(".")
        return top(module) == "services" and len(parts) > 2 and parts[1] not in CLIENTS and parts[2] != "domain"
    assert not broken(clients, rule)


def test_platformkit_imports_no_service_and_only_the_web_layer_speaks_http():
    def rule(p: Path, module: str) -> bool:
        if top(module) == "services":
            return True
        if p.name == "errors.py":  # the refusals depend on nothing
            return top(module) not in {"__future__"}
        if p.name in ("web.py", "run.py"):  # the web layer, and the runner that composes it into an app
            return False
        # flask itself is allowed to auth.py (the request's token), nothing else speaks HTTP
        return within(module, WEB - ({"flask"} if p.name == "auth.py" else set()))
    assert not broken(PLATFORMKIT_FILES, rule)


def test_a_broken_rule_is_caught():
    """The rules fire on what they forbid, and pass what they allow."""
    def flagged(rule, rel: str, text: str) -> list[str]:
        path = ROOT / rel
        return [module for _, module in imports(path, text) if rule(path, module)]

    domain = "services/welfare/domain.py"
    for text in ["from platformkit.web import Conflict", "import pymongo", "from kafka import KafkaProducer",
                 "from flask import request", "from marshmallow import fields", "from platformkit.outbox import X",
                 "from services.membership import domain", "from .service import database"]:
        assert flagged(domain_rule, domain, text), text
    for text in ["from platformkit.errors import Conflict", "from platformkit.envelope import new_event",
                 "import calendar", "from . import domain"]:
        assert not flagged(domain_rule, domain, text), text
    assert flagged(domain_rule, "services/reporting/projection_training.py", "from .store import Generation")
    assert not flagged(domain_rule, "services/reporting/projection_training.py", "from .periods import month_of")

    handler = "services/membership/service.py"
    for text in ["from .schemas import AdmitIn", "from platformkit.web import Conflict", "from flask import g",
                 "from . import api"]:
        assert flagged(handler_rule, handler, text), text
    assert not flagged(handler_rule, handler, "from platformkit.outbox import insert_with_events")
    assert flagged(cross_service_rule, handler, "from services.training import domain")
    assert flagged(cross_service_rule, handler, "import services.welfare.service")
    assert not flagged(cross_service_rule, handler, "from . import domain")
