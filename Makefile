# Developer shortcuts; CI runs .ci/run (the README's test command in a fresh venv).
.PHONY: test lint format bench

test:
	python -m pytest

lint:
	ruff check .
	ruff format --check .
	mypy

format:
	ruff check --fix .
	ruff format .

bench:
	python bench/run.py
