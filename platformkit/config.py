"""Connection names derived from the settings (platformkit.settings reads the environment; topic and
group names are platformkit.contract's). Kept as the short names most modules use."""
from . import contract, settings


def kafka_bootstrap() -> list[str]:
    return settings.current().kafka_bootstrap_servers


def mongo_url() -> str:
    return settings.current().mongo_uri


def db_name(service: str) -> str:
    """Each service owns its database. DB_PREFIX lets tests and demos run side by side."""
    return settings.current().db_prefix + service


def topic(name: str) -> str:
    """The broker's name of a contract topic (contract.topic: TOPIC_PREFIX applied there)."""
    return contract.topic(name)


def dead_letter_topic(group_id: str) -> str:
    return contract.dead_letter_topic(group_id)
