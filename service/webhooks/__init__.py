"""Webhooks: owners register URLs for events; deliveries leave from a database outbox.

- `events.py`: the event names a webhook may subscribe to.
- `signing.py`: secrets and signatures as the Standard Webhooks specification defines.
- `urls.py`: the SSRF guard (no loopback, private, link-local... unless allow-listed).
- `outbox.py`: `record()` writes an event's deliveries in the caller's transaction.
- `delivery.py`: claims due deliveries, posts them, retries with backoff, logs attempts.
"""
