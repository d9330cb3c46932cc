"""Configuration from environment variables (12-factor). Read at call time, never cached at import,
so that tests and gunicorn workers can set them before first use."""
import os


def env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def kafka_bootstrap() -> list[str]:
    return env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092").split(",")


def mongo_url() -> str:
    return env("MONGO_URL", "") or "mongodb://127.0.0.1:%s" % env("DB_PORT", "27017")


def db_name(service: str) -> str:
    """Each service owns its database. DB_PREFIX lets tests and demos run side by side."""
    return env("DB_PREFIX", "congdoan_") + service


def topic(name: str) -> str:
    """Topic names are fixed by the platform contract (`membership.events`, ...). TOPIC_PREFIX is
    empty in production and set by tests so that parallel runs never see each other's events."""
    return env("TOPIC_PREFIX", "") + name


def dead_letter_topic(group_id: str) -> str:
    return topic(f"{group_id}.dlq")
