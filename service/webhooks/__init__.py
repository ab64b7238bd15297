"""Webhook delivery: outbox events and `job.page` batches, signed and POSTed at least once.

dispatcher.py   the leader's loop: due outbox events, one lane per job, retries
batches.py      `job.page` batches cut from stored results
delivery.py     one signed POST through the guarded client
fairness.py     lane budgets per owner, receiver health and circuit breakers
firecrawl.py    Firecrawl-shaped bodies for jobs submitted through /v2
signing.py      `X-Trawl-Signature`; receivers check requests with `verify_signature`
"""

from service.webhooks.dispatcher import WebhookDispatcher
from service.webhooks.signing import sign, verify_signature

__all__ = ["WebhookDispatcher", "sign", "verify_signature"]
