"""Firecrawl's v2 API on Trawl's jobs: `routes` serves it, `translate` maps the shapes."""
