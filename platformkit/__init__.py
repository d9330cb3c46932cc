"""Shared plumbing for every service: event envelope, Kafka producer and consumer loop, outbox,
Mongo client, Flask app factory, auth and logging. Services hold only their domain."""
