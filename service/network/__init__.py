"""Outbound connections shared by crawl fetches and webhooks: policy, backend, transport."""
